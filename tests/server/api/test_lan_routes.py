"""`GET /api/v1/lan/devices` over real HTTP against the real app (SQLite and
PostgreSQL): filters, an agency-scoped token, precise 4xx, the OpenAPI document.
Who may call it at all is in test_authorization_matrix.py (it is a `read` route)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from server.auth.api_tokens import create_api_token
from server.clock import utc_now
from server.ingest.service import IngestService
from tests.server.conftest import LiveServer
from tests.server.helpers import new_api_token
from tests.server.read import lan_fleet

TIMEOUT = 60


@pytest.fixture
def fleet(live_server: LiveServer, service: IngestService) -> LiveServer:
    # Reported through an ingest service on the same database: the API reads the database.
    lan_fleet.build(service, live_server.database)
    return live_server


def get(server: LiveServer, token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{server.url}/api/v1/lan/devices", params=params, headers=headers, timeout=TIMEOUT
    )


def test_province_viewer_filters(fleet: LiveServer) -> None:
    viewer = new_api_token(fleet.database, "viewer")
    everything = get(fleet, viewer).json()
    assert everything["total"] == 5 and everything["discovering_hosts"] == 3
    unmanaged = get(fleet, viewer, agency="so-a", managed="false").json()
    assert [(d["ips"], d["managed"]) for d in unmanaged["items"]] == [
        (["10.0.0.50"], False),
        (["10.0.0.60"], False),
    ]
    nas = unmanaged["items"][0]
    assert [p["port"] for p in nas["ports"]] == [23, 445]
    assert {s["agent_id"] for s in nas["seen_by"]} == {"agent-scan", "agent-scan2"}
    page = get(fleet, viewer, limit=2, offset=4).json()
    assert len(page["items"]) == 1 and page["total"] == 5


def test_agency_scoped_viewer_sees_only_its_agency(fleet: LiveServer) -> None:
    with fleet.database.write() as session:
        _, scoped = create_api_token(session, "IT of so-b", "viewer", utc_now, "so-b")
    mine = get(fleet, scoped).json()
    assert {d["agency"] for d in mine["items"]} == {"so-b"} and mine["total"] == 1
    assert mine["discovering_hosts"] == 1
    other = get(fleet, scoped, agency="so-a").json()
    assert other["total"] == 0 and other["items"] == []


def test_bad_parameters_are_precise_422(fleet: LiveServer) -> None:
    viewer = new_api_token(fleet.database, "viewer")
    for params in (
        {"managed": "perhaps"},
        {"limit": 0},
        {"limit": 1001},
        {"agency": "x" * 65},
        {"agency": "a\x00b"},
        {"agency": "Sở A"},
    ):
        response = get(fleet, viewer, **params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] is not None, response.text
    assert get(fleet, None).status_code == 401


def test_openapi_describes_the_route(live_server: LiveServer) -> None:
    document = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=TIMEOUT).json()
    operation = document["paths"]["/api/v1/lan/devices"]["get"]
    assert {"200", "401", "403", "422", "503"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/LanDevicePage")
