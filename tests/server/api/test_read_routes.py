"""The read API over real HTTP: roles, filters, pagination, host detail, scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import update

from server.auth.api_tokens import revoke_api_token
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.ingest.service import IngestService, limits_of
from server.read.queries import requirement_scores
from server.storage.database import Database
from server.storage.models import Host
from tests.server.conftest import LiveServer
from tests.server.helpers import body_of, make_facts, new_api_token, new_token, telnet

TIMEOUT = 30


def get(server: LiveServer, path: str, token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{server.url}/api/v1{path}", params=params, headers=headers, timeout=TIMEOUT
    )


def report(server: LiveServer, token: str, **facts: Any) -> dict[str, Any]:
    response = requests.post(
        server.reports_url,
        data=body_of(make_facts(**facts)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def fleet(live_server: LiveServer) -> dict[str, str]:
    """Three hosts in two agencies; web01 fails the critical telnet rule."""
    tokens = {
        "web01": new_token(live_server.database, "so-a"),
        "db01": new_token(live_server.database, "so-a"),
        "app01": new_token(live_server.database, "so-b"),
    }
    report(
        live_server, tokens["web01"], agent_id="agent-web", hostname="web01", listening=[telnet()]
    )
    report(live_server, tokens["db01"], agent_id="agent-db", hostname="db01")
    report(live_server, tokens["app01"], agent_id="agent-app", hostname="app01")
    return tokens


@pytest.mark.parametrize(
    "path",
    [
        "/hosts",
        "/hosts/agent-web",
        "/findings",
        "/agencies",
        "/remediation",
        "/scores/agencies/so-a",
        "/scores/hosts/agent-web",
    ],
)
def test_read_endpoints_need_an_api_token(
    live_server: LiveServer, fleet: dict[str, str], path: str
) -> None:
    missing = get(live_server, path, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_token"
    agent = get(live_server, path, fleet["web01"])  # an agent token reads nothing
    assert agent.status_code == 401
    assert agent.json()["error"]["code"] == "invalid_token"
    viewer = get(live_server, path, new_api_token(live_server.database, "viewer"))
    assert viewer.status_code == 200, viewer.text


def test_revoked_api_token_is_refused(live_server: LiveServer) -> None:
    token = new_api_token(live_server.database)
    assert get(live_server, "/hosts", token).status_code == 200
    with live_server.database.write() as session:
        revoke_api_token(session, token.split("_")[1], utc_now)
    assert get(live_server, "/hosts", token).status_code == 401


def test_admin_routes_need_the_admin_role(live_server: LiveServer, fleet: dict[str, str]) -> None:
    viewer = new_api_token(live_server.database, "viewer")
    admin = new_api_token(live_server.database, "admin")
    url = f"{live_server.url}/api/v1/agencies"
    denied = requests.post(
        url,
        json={"id": "so-c", "name": "C"},
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=TIMEOUT,
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "insufficient_role"
    # a stranger is refused before the body is even read: 401, not a 400 about JSON
    stranger = requests.post(url, data=b"{not json", timeout=TIMEOUT)
    assert stranger.status_code == 401
    added = requests.post(
        url,
        json={"id": "so-c", "name": "Sở C"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=TIMEOUT,
    )
    assert added.status_code == 200
    assert added.json() == {"id": "so-c", "name": "Sở C"}
    bad = requests.post(
        url, json={"id": "Bad Id"}, headers={"Authorization": f"Bearer {admin}"}, timeout=TIMEOUT
    )
    assert bad.status_code == 422
    revoke = requests.post(
        f"{url[:-9]}/agents/agent-web/revoke",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=TIMEOUT,
    )
    assert revoke.status_code == 200
    assert revoke.json()["revoked_tokens"] == [fleet["web01"].split("_")[1]]
    refused = requests.post(
        live_server.reports_url,
        data=body_of(make_facts(agent_id="agent-web")),
        headers={"Authorization": f"Bearer {fleet['web01']}"},
        timeout=TIMEOUT,
    )
    assert refused.status_code == 401


def test_hosts_filters_and_pagination(live_server: LiveServer, fleet: dict[str, str]) -> None:
    viewer = new_api_token(live_server.database)
    everything = get(live_server, "/hosts", viewer).json()
    assert everything["total"] == 3
    assert [h["label"] for h in everything["items"]] == ["db01", "web01", "app01"]
    so_a = get(live_server, "/hosts", viewer, agency="so-a").json()
    assert {h["agent_id"] for h in so_a["items"]} == {"agent-web", "agent-db"}
    page = get(live_server, "/hosts", viewer, limit=2, offset=2).json()
    assert (page["total"], len(page["items"]), page["offset"]) == (3, 1, 2)
    assert get(live_server, "/hosts", viewer, os="debian 12").json()["total"] == 3
    assert get(live_server, "/hosts", viewer, os="windows").json()["total"] == 0
    assert get(live_server, "/hosts", viewer, stale="true").json()["total"] == 0
    with live_server.database.write() as session:
        session.execute(
            update(Host)
            .where(Host.agent_id == "agent-db")
            .values(last_received_at=datetime.now(UTC) - timedelta(days=1))
        )
    stale = get(live_server, "/hosts", viewer, stale="true").json()
    assert [h["agent_id"] for h in stale["items"]] == ["agent-db"]
    assert stale["items"][0]["stale"] is True
    assert get(live_server, "/hosts", viewer, limit=0).status_code == 422
    assert get(live_server, "/hosts", viewer, limit=100000).status_code == 422


def test_one_host_has_latest_facts_findings_and_score_history(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    viewer = new_api_token(live_server.database)
    report(live_server, fleet["web01"], agent_id="agent-web", hostname="web01", seq=2)
    detail = get(live_server, "/hosts/agent-web", viewer).json()
    assert detail["agency"] == "so-a"
    assert detail["facts"]["host"]["hostname"] == "web01"
    assert detail["facts"]["seq"] == 2
    assert {r["rule_id"]: r["status"] for r in detail["results"]}["TEST-TELNET"] == "pass"
    [finding] = detail["findings"]
    assert (finding["rule_id"], finding["status"]) == ("TEST-TELNET", "resolved")
    assert [p["score"] for p in detail["score_history"]] == [pytest.approx(3 / 13), 1.0]
    missing = get(live_server, "/hosts/nope", viewer)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_findings_filters(live_server: LiveServer, fleet: dict[str, str]) -> None:
    viewer = new_api_token(live_server.database)
    found = get(live_server, "/findings", viewer).json()
    assert found["total"] == 1
    [item] = found["items"]
    assert (item["host"], item["agency"], item["severity"], item["status"]) == (
        "web01",
        "so-a",
        "critical",
        "open",
    )
    assert get(live_server, "/findings", viewer, agency="so-b").json()["total"] == 0
    assert get(live_server, "/findings", viewer, rule="TEST-TELNET").json()["total"] == 1
    assert get(live_server, "/findings", viewer, severity="low").json()["total"] == 0
    assert get(live_server, "/findings", viewer, status="resolved").json()["total"] == 0
    assert get(live_server, "/findings", viewer, min_age_days=1).json()["total"] == 0
    assert get(live_server, "/findings", viewer, severity="bogus").status_code == 422


def test_agencies_ranked_and_scores(live_server: LiveServer, fleet: dict[str, str]) -> None:
    viewer = new_api_token(live_server.database)
    ranked = get(live_server, "/agencies", viewer).json()["items"]
    assert [(a["rank"], a["agency"]) for a in ranked] == [(1, "so-b"), (2, "so-a")]
    # so-a pools web01 (critical 10 fails; 3 of 13) and db01 (13 of 13): 16 / 26
    assert ranked[1]["score"] == pytest.approx(16 / 26)
    assert (ranked[1]["hosts"], ranked[1]["open_findings"]) == (2, 1)
    one = get(live_server, "/scores/agencies/so-a", viewer).json()
    assert one["score"] == pytest.approx(16 / 26)
    host = get(live_server, "/scores/hosts/agent-web", viewer).json()
    assert host["score"] == pytest.approx(3 / 13)
    assert get(live_server, "/scores/frameworks/nope", viewer).status_code == 404


def test_time_to_remediate(live_server: LiveServer, fleet: dict[str, str]) -> None:
    viewer = new_api_token(live_server.database)
    later = datetime.now(UTC) + timedelta(seconds=1)
    report(
        live_server,
        fleet["web01"],
        agent_id="agent-web",
        hostname="web01",
        seq=2,
        collected_at=later,
    )
    by_agency = get(live_server, "/remediation", viewer, by="agency").json()["items"]
    assert [(r["agency"], r["resolved"], r["open"]) for r in by_agency] == [("so-a", 1, 0)]
    assert by_agency[0]["median_hours"] >= 0
    by_rule = get(live_server, "/remediation", viewer, by="rule").json()["items"]
    assert [r["rule"] for r in by_rule] == ["TEST-TELNET"]


def test_openapi_schema_documents_the_api(live_server: LiveServer) -> None:
    schema = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=TIMEOUT).json()
    for path in (
        "/api/v1/reports",
        "/api/v1/enroll",
        "/api/v1/hosts",
        "/api/v1/findings",
        "/api/v1/agencies",
        "/api/v1/hosts/{agent_id}",
    ):
        assert path in schema["paths"], path


def test_framework_requirement_scores_with_the_built_in_policy(
    database: Database, token: str
) -> None:
    """The built-in packs and frameworks: every requirement gets a pooled score."""
    policy = load_server_policy(ServerConfig())
    if not policy.frameworks:
        pytest.skip("rules.policy.bundle without frameworks")
    service = IngestService(database, policy, limits_of(ServerConfig()))
    service.ingest(service.authenticate(token), body_of(make_facts(listening=[telnet()])), None)
    framework = policy.frameworks[0]
    with database.session() as session:
        scores = requirement_scores(session, policy.frameworks, framework.id, policy.weights, None)
        assert requirement_scores(session, policy.frameworks, "nope", policy.weights, None) is None
    assert scores is not None
    assert [s["requirement"] for s in scores] == [r.id for r in framework.requirements]
    assert all(s["score"] is None or 0.0 <= s["score"] <= 1.0 for s in scores)


def test_out_of_range_query_values_are_422_not_500(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    viewer = new_api_token(live_server.database, "viewer")
    for path in (
        "/findings?min_age_days=1e12",
        "/findings?min_age_days=inf",
        "/hosts?offset=100000000000000000000",
    ):
        assert get(live_server, path, viewer).status_code == 422, path


def test_control_characters_in_filters_are_422_not_an_outage(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    """A NUL in a filter used to reach PostgreSQL, whose error reads like the database
    being down (503); every text filter now refuses it, and other control characters."""
    viewer = new_api_token(live_server.database, "viewer")
    for path, params in (
        ("/hosts", {"agency": "ag\x00x"}),
        ("/hosts", {"os": "Debian\x00"}),
        ("/hosts", {"os": "line\nbreak"}),
        ("/hosts", {"agency": "Not An Agency"}),
        ("/findings", {"rule": "SSH\x00"}),
        ("/findings", {"agent_id": "\x00"}),
        ("/findings", {"agency": "\x1b[31m"}),
        ("/lan/devices", {"agency": "a\x00"}),
        ("/vulnerabilities", {"agency": "a\x00"}),
        ("/vulnerabilities", {"host": "\x00"}),
    ):
        answer = get(live_server, path, viewer, **params)
        assert answer.status_code == 422, (path, params, answer.status_code)
    # the ordinary filters still work
    assert get(live_server, "/hosts", viewer, os="Debian").status_code == 200
    assert get(live_server, "/findings", viewer, agency="so-a").status_code == 200


def test_reports_dropped_from_a_full_spool_are_summed_per_host(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    """Each delivered report tells the reports its agent dropped since the previous one
    (docs/facts.md): the host's summary shows the sum, the other hosts 0."""
    viewer = new_api_token(live_server.database)
    web = {"agent_id": "agent-web", "hostname": "web01"}
    report(live_server, fleet["web01"], **web, seq=5, spool_dropped_reports=3)
    report(live_server, fleet["web01"], **web, seq=6)
    report(live_server, fleet["web01"], **web, seq=9, spool_dropped_reports=2)
    hosts = {h["agent_id"]: h for h in get(live_server, "/hosts", viewer).json()["items"]}
    assert {a: h["spool_dropped_reports"] for a, h in hosts.items()} == {
        "agent-web": 5,
        "agent-db": 0,
        "agent-app": 0,
    }
    assert get(live_server, "/hosts/agent-web", viewer).json()["spool_dropped_reports"] == 5
