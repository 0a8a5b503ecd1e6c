"""Enrolment over real HTTP: agency secret in, per-agent token out; every refusal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests

from server.auth.agent_tokens import parse_token, revoke_agent
from server.auth.enrolment import rotate_enrol_secret
from server.clock import utc_now
from server.storage.models import EnrolSecret
from tests.server.conftest import LiveServer
from tests.server.helpers import body_of, make_facts, new_enrol_secret, new_token, stored_state

TIMEOUT = 30


def enroll(
    server: LiveServer, secret: str | None, body: Any = None, raw: bytes | None = None
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    payload = body if body is not None else {"agent_id": "agent-1", "hostname": "web01"}
    return requests.post(
        f"{server.url}/api/v1/enroll",
        json=None if raw is not None else payload,
        data=raw,
        headers=headers,
        timeout=TIMEOUT,
    )


def report(server: LiveServer, token: str, **facts: Any) -> requests.Response:
    return requests.post(
        server.reports_url,
        data=body_of(make_facts(**facts)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def test_enrolment_returns_a_bound_token_that_reports(live_server: LiveServer) -> None:
    secret = new_enrol_secret(live_server.database)
    response = enroll(
        live_server,
        secret,
        {"agent_id": "agent-1", "hostname": "web01", "machine_id": "0123456789abcdef"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"agency", "agent_id", "token_id", "token"}
    assert (body["agency"], body["agent_id"]) == ("so-test", "agent-1")
    assert response.headers["Cache-Control"] == "no-store"
    token_id, token_secret = parse_token(body["token"])
    assert token_id == body["token_id"]
    assert len(token_secret) * 6 >= 128  # base64url characters carry 6 bits each
    assert report(live_server, body["token"]).status_code == 200
    # bound to its agent at enrolment: it cannot report for another one
    refused = report(live_server, body["token"], agent_id="agent-2")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "token_bound_to_other_agent"


def test_secret_is_stored_hashed_only(live_server: LiveServer) -> None:
    secret = new_enrol_secret(live_server.database)
    with live_server.database.session() as session:
        rows = list(session.query(EnrolSecret))
    assert len(rows) == 1
    assert secret.split("_", 2)[2] not in repr(vars(rows[0]))


@pytest.mark.parametrize(
    ("secret", "code"),
    [
        (None, "missing_token"),
        ("cge_aaaaaaaaaa_" + "A" * 43, "invalid_token"),
        ("not-a-secret", "invalid_token"),
        ("cgt_aaaaaaaaaa_" + "A" * 43, "invalid_token"),  # an agent token is not a secret
    ],
)
def test_refuses_missing_and_unknown_secrets(
    live_server: LiveServer, secret: str | None, code: str
) -> None:
    new_enrol_secret(live_server.database)
    before = stored_state(live_server.database)
    response = enroll(live_server, secret)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert stored_state(live_server.database) == before


def test_a_rotated_secret_stops_working(live_server: LiveServer) -> None:
    old = new_enrol_secret(live_server.database)
    new = new_enrol_secret(live_server.database)
    before = stored_state(live_server.database)
    response = enroll(live_server, old)
    assert response.status_code == 401
    assert "rotated" in response.json()["error"]["message"]
    assert stored_state(live_server.database) == before
    assert enroll(live_server, new).status_code == 200


def test_an_expired_secret_is_refused(live_server: LiveServer) -> None:
    new_enrol_secret(live_server.database)
    with live_server.database.write() as session:
        secret = rotate_enrol_secret(session, "so-test", utc_now() + timedelta(hours=1), utc_now)
        row = session.query(EnrolSecret).filter(EnrolSecret.revoked_at.is_(None)).one()
        row.expires_at = utc_now() - timedelta(seconds=1)
    response = enroll(live_server, secret)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hostname": "web01"}, "agent_id"),
        ({"agent_id": "has space", "hostname": "web01"}, "agent_id"),
        ({"agent_id": "a" * 129, "hostname": "web01"}, "agent_id"),
        ({"agent_id": "agent-1"}, "hostname"),
        ({"agent_id": "agent-1", "hostname": 7}, "hostname"),
        ({"agent_id": "agent-1", "hostname": "w", "machine_id": ["x"]}, "machine_id"),
    ],
)
def test_refuses_invalid_identity(
    live_server: LiveServer, body: dict[str, Any], field: str
) -> None:
    secret = new_enrol_secret(live_server.database)
    before = stored_state(live_server.database)
    response = enroll(live_server, secret, body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert stored_state(live_server.database) == before


def test_refuses_malformed_json(live_server: LiveServer) -> None:
    secret = new_enrol_secret(live_server.database)
    before = stored_state(live_server.database)
    response = enroll(live_server, secret, raw=b'{"agent_id": ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert stored_state(live_server.database) == before


def test_enrolled_agent_cannot_enrol_again_until_revoked(live_server: LiveServer) -> None:
    secret = new_enrol_secret(live_server.database)
    first = enroll(live_server, secret).json()["token"]
    assert report(live_server, first).status_code == 200
    before = stored_state(live_server.database)
    again = enroll(live_server, secret)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_enrolled"
    assert stored_state(live_server.database) == before
    with live_server.database.write() as session:
        revoke_agent(session, "agent-1", utc_now)
    refused = report(live_server, first, seq=2)
    assert refused.status_code == 401  # revoked: refused at once
    second = enroll(live_server, secret)
    assert second.status_code == 200
    assert report(live_server, second.json()["token"], seq=2).status_code == 200


def test_agent_of_another_agency_cannot_enrol(live_server: LiveServer) -> None:
    secret = new_enrol_secret(live_server.database)
    token = enroll(live_server, secret).json()["token"]
    assert report(live_server, token).status_code == 200
    other = new_enrol_secret(live_server.database, agency="so-other")
    with live_server.database.write() as session:
        revoke_agent(session, "agent-1", utc_now)
    before = stored_state(live_server.database)
    response = enroll(live_server, other)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_of_other_agency"
    assert stored_state(live_server.database) == before


def test_hand_made_token_cannot_claim_an_enrolled_agent_before_its_first_report(
    live_server: LiveServer,
) -> None:
    """An enrolled agent has no host row until it reports; a token of another agency
    (or another token of its own) must not be able to claim it in that window."""
    secret = new_enrol_secret(live_server.database, "so-b")
    enrolled = enroll(live_server, secret, {"agent_id": "victim-1", "hostname": "web01"})
    assert enrolled.status_code == 200
    intruder = new_token(live_server.database, "so-a")
    before = stored_state(live_server.database)
    taken = report(live_server, intruder, agent_id="victim-1")
    assert taken.status_code == 403
    assert taken.json()["error"]["code"] == "agent_of_other_agency"
    sibling = report(live_server, new_token(live_server.database, "so-b"), agent_id="victim-1")
    assert sibling.status_code == 403
    assert sibling.json()["error"]["code"] == "host_has_active_token"
    assert stored_state(live_server.database)["reports"] == before["reports"]
    # the real agent still reports, into its own agency
    assert report(live_server, enrolled.json()["token"], agent_id="victim-1").status_code == 200
