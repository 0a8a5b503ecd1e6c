"""The HTTP API against a real uvicorn server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from server.auth.agent_tokens import revoke_token
from server.clock import utc_now
from server.evaluation.loaded_policy import Outcome, ServerPolicy
from server.ingest.service import IngestService, limits_of
from server.storage.database import Database
from tests.server.conftest import LIVE_MAX_BODY, LiveServer, LiveServers
from tests.server.helpers import (
    body_of,
    deep_json,
    gzip_bomb,
    make_facts,
    new_token,
    stored_state,
    telnet,
)

TIMEOUT = 30


def post(
    server: LiveServer,
    body: bytes | Iterator[bytes],
    token: str | None,
    **headers: str,
) -> requests.Response:
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.post(server.reports_url, data=body, headers=sent, timeout=TIMEOUT)


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.fixture
def before(live_server: LiveServer, token: str) -> dict[str, Any]:
    """The database state before the request under test (the token already exists)."""
    return stored_state(live_server.database)


def assert_nothing_stored(database: Database, before: dict[str, Any]) -> None:
    assert stored_state(database) == before


# -- accepted ------------------------------------------------------------------


def test_accepts_a_report_and_answers_after_storing(live_server: LiveServer, token: str) -> None:
    facts = make_facts(listening=[telnet()])
    response = post(live_server, body_of(facts), token)
    assert response.status_code == 200
    assert response.json() == {
        "status": "accepted",
        "report_id": facts["report_id"],
        "duplicate": False,
        "score": pytest.approx(3 / 13),  # low 1 + medium 2 pass; critical 10 fails
        "failing": 1,
        "applied": True,
        "dropped_keys": 0,
    }
    state = stored_state(live_server.database)
    assert (state["hosts"], state["reports"], state["rule_results"], state["findings"]) == (
        1,
        1,
        3,
        1,
    )


def test_accepts_gzip(live_server: LiveServer, token: str) -> None:
    facts = make_facts()
    response = post(
        live_server, body_of(facts, compress=True), token, **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["score"] == 1.0


def test_duplicate_report_id_is_stored_once(live_server: LiveServer, token: str) -> None:
    facts = make_facts()
    assert post(live_server, body_of(facts), token).json()["status"] == "accepted"
    after_first = stored_state(live_server.database)
    response = post(live_server, body_of(facts), token)
    assert response.status_code == 200
    assert response.json() == {
        "status": "duplicate",
        "report_id": facts["report_id"],
        "duplicate": True,
    }
    assert stored_state(live_server.database) == after_first
    assert after_first["reports"] == 1


# -- authentication ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("Basic dXNlcjpwYXNz", "invalid_token"),
        ("Bearer", "invalid_token"),
        ("Bearer not-a-canhgac-token", "invalid_token"),
        ("Bearer cgt_aaaaaaaaaa_" + "A" * 43, "invalid_token"),  # well-formed, unknown
    ],
)
def test_refuses_missing_malformed_and_unknown_tokens(
    live_server: LiveServer, before: dict[str, Any], authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = post(live_server, body_of(make_facts()), None, **headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == code
    assert_nothing_stored(live_server.database, before)


def test_refuses_a_wrong_secret_for_a_known_token_id(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> None:
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = post(live_server, body_of(make_facts()), tampered)
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"
    assert_nothing_stored(live_server.database, before)


def test_refuses_a_revoked_token(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> None:
    with live_server.database.write() as session:
        revoke_token(session, token.split("_")[1], utc_now)
    before = stored_state(live_server.database)
    response = post(live_server, body_of(make_facts()), token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in error_of(response)["message"]
    assert_nothing_stored(live_server.database, before)


def test_refuses_a_token_bound_to_another_agent(live_server: LiveServer, token: str) -> None:
    assert post(live_server, body_of(make_facts(agent_id="agent-1")), token).status_code == 200
    before = stored_state(live_server.database)
    response = post(live_server, body_of(make_facts(agent_id="agent-2")), token)
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "token_bound_to_other_agent"
    assert error["field"] == "agent_id"
    assert_nothing_stored(live_server.database, before)


def test_refuses_an_agent_id_of_another_agency(live_server: LiveServer, token: str) -> None:
    assert post(live_server, body_of(make_facts(agent_id="agent-1")), token).status_code == 200
    other_agency_token = new_token(live_server.database, agency="so-other")
    before = stored_state(live_server.database)
    response = post(live_server, body_of(make_facts(agent_id="agent-1")), other_agency_token)
    assert response.status_code == 403
    assert error_of(response)["code"] == "agent_of_other_agency"
    assert_nothing_stored(live_server.database, before)


# -- bad bodies --------------------------------------------------------------------


def _bad_bodies() -> list[Any]:
    valid = make_facts()
    wrong_version = {**make_facts(), "schema": "canhgac.facts/v2"}
    no_host_name = make_facts()
    del no_host_name["host"]["hostname"]
    wrong_type = make_facts()
    wrong_type["seq"] = "seven"
    far_future = make_facts(collected_at=datetime.now(UTC) + timedelta(days=1))
    return [
        pytest.param(
            b'{"schema": "canhgac.facts/v1",', {}, 400, "invalid_json", None, id="malformed-json"
        ),
        pytest.param(b'{"a": "\xff\xfe"}', {}, 400, "invalid_utf8", None, id="invalid-utf8"),
        pytest.param(b"[1, 2, 3]", {}, 400, "not_an_object", None, id="not-an-object"),
        pytest.param(deep_json(200), {}, 400, "json_too_deep", None, id="deep-json"),
        pytest.param(deep_json(200_000), {}, 400, "json_too_deep", None, id="very-deep-json"),
        pytest.param(
            body_of(wrong_version), {}, 422, "unsupported_schema", "schema", id="wrong-schema"
        ),
        pytest.param(
            body_of(no_host_name), {}, 422, "schema_violation", "host.hostname", id="missing-field"
        ),
        pytest.param(body_of(wrong_type), {}, 422, "schema_violation", "seq", id="wrong-type"),
        pytest.param(
            body_of(far_future), {}, 422, "collected_at_in_future", "collected_at", id="future"
        ),
        pytest.param(
            body_of(valid)[:-1] + b', "seq": 99}',
            {},
            400,
            "duplicate_key",
            "seq",
            id="duplicate-key",
        ),
        pytest.param(
            body_of({**valid, "packages": {"count": 1}})[:-2] + b', "count": 2}}',
            {},
            400,
            "duplicate_key",
            "packages.count",
            id="nested-duplicate-key",
        ),
        pytest.param(
            body_of(valid)[:-1] + b', "x": 1e400}',
            {},
            400,
            "number_out_of_range",
            None,
            id="non-finite-number",
        ),
        pytest.param(
            body_of({**valid, "packages": [0] * 1_000_000}, compress=True),
            {"Content-Encoding": "gzip"},
            413,
            "list_too_long",
            "packages",
            id="million-items",
        ),
        pytest.param(
            body_of({**valid, "listening": [telnet()] * 20_001}, compress=True),
            {"Content-Encoding": "gzip"},
            422,
            "schema_violation",
            "listening",
            id="listening-over-schema-max",
        ),
        pytest.param(
            body_of(valid),
            {"Content-Encoding": "br"},
            415,
            "unsupported_encoding",
            None,
            id="brotli",
        ),
        pytest.param(
            body_of(valid), {"Content-Encoding": "gzip"}, 400, "invalid_gzip", None, id="not-gzip"
        ),
    ]


@pytest.mark.parametrize(("body", "headers", "status", "code", "field"), _bad_bodies())
def test_refuses_bad_bodies_and_stores_nothing(
    live_server: LiveServer,
    token: str,
    before: dict[str, Any],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = post(live_server, body, token, **headers)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert error.get("field") == field
    assert_nothing_stored(live_server.database, before)


def test_refuses_an_oversized_body(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> None:
    body = b" " * (LIVE_MAX_BODY + 1)
    response = post(live_server, body, token)
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert_nothing_stored(live_server.database, before)


def test_refuses_an_oversized_chunked_body_while_streaming(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIVE_MAX_BODY // 65536 + 2):
            yield b" " * 65536

    response = post(live_server, chunks(), token)
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert_nothing_stored(live_server.database, before)


def test_refuses_by_content_length_before_reading_the_body(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> None:
    """Only headers are sent, announcing 1 GiB: the answer comes without any body."""
    address = urlsplit(live_server.url)
    request = (
        "POST /api/v1/reports HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {1024**3}\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(payload)["error"]["code"] == "body_too_large"
    assert_nothing_stored(live_server.database, before)


def test_refuses_a_gzip_bomb(live_server: LiveServer, token: str, before: dict[str, Any]) -> None:
    bomb = gzip_bomb(1024**3)  # 1 GiB of zeros, about 1 MiB compressed
    assert len(bomb) < LIVE_MAX_BODY
    response = post(live_server, bomb, token, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "decompressed_too_large"
    assert_nothing_stored(live_server.database, before)


def test_rate_limit_per_agent(live_servers: LiveServers, token: str) -> None:
    live_server = live_servers.start(agent_rate_per_minute=1.0, agent_rate_burst=2)
    assert post(live_server, body_of(make_facts(seq=1)), token).status_code == 200
    assert post(live_server, body_of(make_facts(seq=2)), token).status_code == 200
    before = stored_state(live_server.database)
    response = post(live_server, body_of(make_facts(seq=3)), token)
    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert_nothing_stored(live_server.database, before)
    other = new_token(live_server.database)  # another agent has its own budget
    assert post(live_server, body_of(make_facts(agent_id="agent-2")), other).status_code == 200


def test_counts_outcomes(live_server: LiveServer, token: str) -> None:
    post(live_server, body_of(make_facts()), token)
    post(live_server, b"{", token)
    post(live_server, body_of(make_facts()), None)
    samples = _samples(live_server, "canhgac_reports_received")
    assert samples[("canhgac_reports_received_total", (("outcome", "accepted"),))] == 1
    assert samples[("canhgac_reports_received_total", (("outcome", "bad_request"),))] == 1
    assert samples[("canhgac_reports_received_total", (("outcome", "unauthorized"),))] == 1
    assert samples[("canhgac_reports_received_total", (("outcome", "too_large"),))] == 0


# -- health and metrics ------------------------------------------------------------


def test_healthz(live_server: LiveServer) -> None:
    response = requests.get(f"{live_server.url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_is_gone(live_server: LiveServer, token: str) -> None:
    if live_server.database.engine.dialect.name == "postgresql":
        # The database disappears under the running collector.
        url = live_server.database.engine.url
        live_server.database.dispose()
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        admin.dispose()
        response = requests.get(f"{live_server.url}/healthz", timeout=TIMEOUT)
        assert response.status_code == 503
        refused = post(live_server, body_of(make_facts()), token)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        assert error_of(refused)["code"] == "unavailable"
        return
    path = live_server.database.engine.url.database
    assert path is not None
    with live_server.database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    # Make the file unreadable as a database: health must say so.
    live_server.database.dispose()
    with open(path, "r+b") as handle:
        handle.write(b"this is not a sqlite database!!!" * 4)
    response = requests.get(f"{live_server.url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def _samples(
    live_server: LiveServer, family_name: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{live_server.url}/metrics", timeout=TIMEOUT).text
    samples = {}
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_reflect_an_accepted_report(live_server: LiveServer, token: str) -> None:
    response = requests.get(f"{live_server.url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert not _samples(live_server, "canhgac_host_score_ratio")
    post(live_server, body_of(make_facts(hostname="web01", listening=[telnet()])), token)
    labels = (("agency", "so-test"), ("host", "web01"))
    score = _samples(live_server, "canhgac_host_score_ratio")
    assert score == {("canhgac_host_score_ratio", labels): pytest.approx(3 / 13)}
    failing = _samples(live_server, "canhgac_host_rules_failing")
    assert failing[("canhgac_host_rules_failing", (*labels, ("severity", "critical")))] == 1
    # A severity with nothing failing carries no information: not exported (docs/metrics.md).
    assert ("canhgac_host_rules_failing", (*labels, ("severity", "medium"))) not in failing
    assert failing and all(value > 0 for value in failing.values())


@dataclass(frozen=True)
class BrokenPolicy(ServerPolicy):
    """A policy whose evaluation fails as an engine bug would."""

    def evaluate(self, *_args: Any, **_kwargs: Any) -> Outcome:
        raise RuntimeError("engine bug")


def test_unexpected_failure_is_a_json_500_and_stores_nothing(
    live_servers: LiveServers, token: str, policy: ServerPolicy
) -> None:
    broken = BrokenPolicy(policy.policy, policy.fingerprint, policy.weights)
    live_server = live_servers.start(policy=broken)
    before = stored_state(live_server.database)
    response = post(live_server, body_of(make_facts()), token)
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal", "message": "internal error"}
    assert "engine bug" not in response.text
    assert_nothing_stored(live_server.database, before)
    errors = _samples(live_server, "canhgac_reports_received")
    assert errors[("canhgac_reports_received_total", (("outcome", "error"),))] == 1


def test_metrics_converge_on_another_replicas_writes(
    live_server: LiveServer, token: str, policy: ServerPolicy
) -> None:
    """A report stored by another replica on the same database shows up after a refresh."""
    other_replica = IngestService(live_server.database, policy, limits_of(live_server.config))
    credential = other_replica.authenticate(token)
    other_replica.ingest(credential, body_of(make_facts(hostname="db01")), None)
    deadline = time.monotonic() + 10
    labels = (("agency", "so-test"), ("host", "db01"))
    while ("canhgac_host_score_ratio", labels) not in _samples(
        live_server, "canhgac_host_score_ratio"
    ):
        assert time.monotonic() < deadline, "the replica's write never reached /metrics"
        time.sleep(0.1)
