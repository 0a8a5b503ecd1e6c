"""Every route and every kind of credential → whether it is let in (issue 14).

One table, one test, against the real app under uvicorn on loopback with a real
database: routes come from the served OpenAPI document, so a new route without a
row here fails the test. A refused cell must get exactly its status (401: no or an
unknown/revoked credential of the wrong kind; 403: a known credential without the
right); an allowed cell must get neither 401 nor 403 and no 5xx (404 for an
unknown id is fine: that is past authorization).

Agency-scoped viewers: one of agent-1's agency (so-test), one of another agency
(so-other). The other agency's viewer must get 404 (not 403: the id's existence is
not revealed) for so-test's host and agency ids, and both get 403 for the province
audit and the admin routes. What the scoped lists hold is checked in
test_agency_scope.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from server.auth.api_tokens import api_token_id_of, create_api_token, revoke_api_token
from server.clock import utc_now
from tests.server.conftest import LiveServer
from tests.server.helpers import (
    body_of,
    make_facts,
    new_api_token,
    new_enrol_secret,
    new_token,
)

OK = "allowed"
CREDENTIALS = (
    "none",
    "garbage",
    "revoked_api",
    "agent",
    "other_agency_agent",
    "viewer",
    "agency_viewer",
    "other_agency_viewer",
    "admin",
    "enrol_secret",
)
# Audience of each route -> expected answer per credential.
Expected = dict[str, int | str]
_READ: Expected = {
    "none": 401,
    "garbage": 401,
    "revoked_api": 401,
    "agent": 401,
    "other_agency_agent": 401,
    "viewer": OK,
    "agency_viewer": OK,
    "other_agency_viewer": OK,
    "admin": OK,
    "enrol_secret": 401,
}
# Paths naming agent-1 or its agency: another agency's scoped viewer is told "not found".
_READ_ONE: Expected = {**_READ, "other_agency_viewer": 404}
_PROVINCE: Expected = {**_READ, "agency_viewer": 403, "other_agency_viewer": 403}
_ADMIN: Expected = {
    **_READ,
    "viewer": 403,
    "agency_viewer": 403,
    "other_agency_viewer": 403,
}
_OPEN: Expected = dict.fromkeys(CREDENTIALS, OK)
_REPORTS: Expected = {
    "none": 401,
    "garbage": 401,
    "revoked_api": 401,
    "agent": OK,
    "other_agency_agent": 403,
    "viewer": 401,
    "agency_viewer": 401,
    "other_agency_viewer": 401,
    "admin": 401,
    "enrol_secret": 401,
}
_ENROL: Expected = {**dict.fromkeys(CREDENTIALS, 401), "enrol_secret": OK}
AUDIENCE: dict[str, Expected] = {
    "read": _READ,
    "audit": _READ,
    "admin": _ADMIN,
    "operations": _OPEN,
}
SPECIAL: dict[str, Expected] = {"POST /api/v1/reports": _REPORTS, "POST /api/v1/enroll": _ENROL}
# /metrics has its own credentials (server.metrics.access): open unless configured.
SKIPPED = {"GET /metrics"}


def _credentials(live: LiveServer) -> dict[str, str | None]:
    database = live.database
    revoked = new_api_token(database, "admin")
    with database.write() as session:
        assert revoke_api_token(session, api_token_id_of(revoked), utc_now)
    other = new_token(database, "so-other")
    # Bind the other agency's token to its own agent, as a real one would be.
    _post_report(live.url, other, "agent-9")
    return {
        "none": None,
        "garbage": "zzz-not-a-token",
        "revoked_api": revoked,
        "agent": new_token(database),
        "other_agency_agent": other,
        "viewer": new_api_token(database, "viewer"),
        "agency_viewer": _scoped_viewer(live, "so-test"),
        "other_agency_viewer": _scoped_viewer(live, "so-other"),
        "admin": new_api_token(database, "admin"),
        "enrol_secret": new_enrol_secret(database),
    }


def _scoped_viewer(live: LiveServer, agency: str) -> str:
    with live.database.write() as session:
        _, plain = create_api_token(session, f"viewer of {agency}", "viewer", utc_now, agency)
    return plain


def _expected(label: str, tag: str) -> Expected:
    """The row of a route: its audience, narrowed for ids and the province audit."""
    if label in SPECIAL:
        return SPECIAL[label]
    if tag == "audit" and label.endswith("/province"):
        return _PROVINCE
    if tag in ("read", "audit") and ("{agent_id}" in label or "{agency_id}" in label):
        return _READ_ONE
    return AUDIENCE[tag]


def _post_report(url: str, token: str | None, agent_id: str) -> requests.Response:
    facts = make_facts(agent_id=agent_id, collected_at=datetime.now(UTC) - timedelta(minutes=1))
    facts["report_id"] = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{url}/api/v1/reports", data=body_of(facts), headers=headers, timeout=60)


def _call(url: str, method: str, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    concrete = (
        path.replace("{agent_id}", "agent-1")
        .replace("{agency_id}", "so-test")
        .replace("{framework_id}", "no-such-framework")
    )
    body: dict[str, Any] | None = None
    if path == "/api/v1/enroll":
        body = {"agent_id": f"enrol-{uuid.uuid4().hex[:12]}", "hostname": "web-new"}
    elif path == "/api/v1/agencies" and method == "POST":
        body = {"id": "so-new", "name": "New agency"}
    elif path.endswith("/revoke"):
        concrete = concrete.replace("agent-1", "no-such-agent")  # keep agent-1's token
    return requests.request(method, f"{url}{concrete}", json=body, headers=headers, timeout=120)


def test_authorization_matrix(live_server: LiveServer) -> None:
    url = live_server.url
    credentials = _credentials(live_server)
    # agent-1 has reported (its token bound): ids in paths exist.
    assert _post_report(url, credentials["agent"], "agent-1").status_code == 200
    document = requests.get(f"{url}/api/v1/openapi.json", timeout=30).json()
    wrong: list[str] = []
    cells = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            if label in SKIPPED:
                continue
            expected = _expected(label, operation["tags"][0])
            for name in CREDENTIALS:
                token = credentials[name]
                if label == "POST /api/v1/reports":
                    status = _post_report(url, token, "agent-1").status_code
                else:
                    status = _call(url, method.upper(), path, token).status_code
                cells += 1
                want = expected[name]
                if want == OK:
                    if status in (401, 403) or status >= 500:
                        wrong.append(f"{label} as {name}: {status}, expected allowed")
                elif status != want:
                    wrong.append(f"{label} as {name}: {status}, expected {want}")
    assert not wrong, "\n".join(wrong)
    assert cells >= 20 * len(CREDENTIALS)
