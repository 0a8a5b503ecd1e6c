"""LAN devices from the stored facts (SQLite and PostgreSQL), reported through ingest:
merged by MAC then IP within an agency, matched to enrolled hosts, first/last seen,
scope, filters; and the latest report's discovery is what counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from server.ingest.service import IngestService
from server.read import lan
from server.read.lan_views import LanDevicePage
from server.storage.database import Database
from server.storage.fact_store import load_domains
from server.storage.models import Host
from tests.server.helpers import iso
from tests.server.read import lan_fleet
from tests.server.read.lan_fleet import NAS_MAC, PRINTER_MAC, T0


def devices(database: Database, **kw: Any) -> dict[str, Any]:
    with database.session() as session:
        answer = lan.list_devices(session, limit=kw.pop("limit", 100), offset=0, **kw)
    LanDevicePage.model_validate(answer)  # the API's model accepts exactly this
    return answer


@pytest.fixture
def tokens(service: IngestService, database: Database) -> dict[str, str]:
    return lan_fleet.build(service, database)


@pytest.fixture
def fleet(tokens: dict[str, str], database: Database) -> Database:
    return database


def by_ip(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["ips"][0]: d for d in answer["items"]}


def test_agency_devices_merged_and_matched(fleet: Database) -> None:
    answer = devices(fleet, agency="so-a")
    assert answer["total"] == 4 and answer["discovering_hosts"] == 2
    found = by_ip(answer)
    assert list(found) == ["10.0.0.1", "10.0.0.2", "10.0.0.50", "10.0.0.60"]  # IPv4 order

    # Seen without a MAC, at agent-scan's own address: managed by IP.
    assert found["10.0.0.1"]["managed"] and found["10.0.0.1"]["mac"] is None
    assert found["10.0.0.1"]["managed_agent_id"] == "agent-scan"
    # web01's interface MAC.
    assert found["10.0.0.2"]["managed_agent_id"] == "agent-web"

    nas = found["10.0.0.50"]
    assert not nas["managed"] and nas["managed_agent_id"] is None
    assert nas["mac"] == NAS_MAC and nas["vendor"] == "Synology"
    assert [(p["port"], p["service"]) for p in nas["ports"]] == [
        (23, "telnet"),
        (445, "microsoft-ds"),
    ]
    assert nas["found_by"] == ["arp", "connect"]
    # The earliest first seen and the latest last seen of the two agents' own.
    assert nas["first_seen"] == iso(T0 - timedelta(days=3)).replace(".000000", "")
    assert nas["last_seen"] == iso(T0 + timedelta(hours=1)).replace(".000000", "")
    assert [s["agent_id"] for s in nas["seen_by"]] == ["agent-scan", "agent-scan2"]
    assert [s["host"] for s in nas["seen_by"]] == ["scan01", "scan02"]

    # One agent saw the printer's MAC, the other only its IP: one device.
    printer = found["10.0.0.60"]
    assert printer["mac"] == PRINTER_MAC and len(printer["seen_by"]) == 2
    # No first/last seen from the agents: agent-scan's sweep time, agent-scan2's
    # report time (it sent no swept_at).
    assert printer["first_seen"] == "2026-11-20T07:55:00Z"
    assert printer["last_seen"] == "2026-11-20T10:00:00Z"


def test_agencies_never_merged_and_scope_applies(fleet: Database) -> None:
    everything = devices(fleet)
    assert everything["total"] == 5
    so_b = [d for d in everything["items"] if d["agency"] == "so-b"]
    assert len(so_b) == 1 and so_b[0]["mac"] == NAS_MAC
    assert [p["port"] for p in so_b[0]["ports"]] == [3306]

    scoped = devices(fleet, scope="so-b")
    assert [d["agency"] for d in scoped["items"]] == ["so-b"] and scoped["discovering_hosts"] == 1
    assert devices(fleet, scope="so-b", agency="so-a")["total"] == 0


def test_managed_filter_and_paging(fleet: Database) -> None:
    unmanaged = devices(fleet, agency="so-a", managed=False)
    assert [d["ips"][0] for d in unmanaged["items"]] == ["10.0.0.50", "10.0.0.60"]
    managed = devices(fleet, agency="so-a", managed=True)
    assert [d["ips"][0] for d in managed["items"]] == ["10.0.0.1", "10.0.0.2"]
    page = devices(fleet, agency="so-a", limit=1)
    assert len(page["items"]) == 1 and page["total"] == 4


def test_only_the_latest_report_counts(
    fleet: Database, service: IngestService, tokens: dict[str, str]
) -> None:
    """agent-scan's next report carries no discovery (e.g. its sweep failed): its devices
    are gone; those agent-scan2 also saw stay, seen by agent-scan2 only."""
    token = tokens["agent-scan"]
    with fleet.session() as session:
        host = session.query(Host).filter_by(agent_id="agent-scan").one()
        host_value = load_domains(session, [host.last_report_pk or 0], ["host"])
    lan_fleet.report(
        service,
        token,
        "agent-scan",
        host_value[next(iter(host_value))]["host"],
        seq=2,
        collected_at=T0 + timedelta(hours=3),
    )
    answer = devices(fleet, agency="so-a")
    assert answer["discovering_hosts"] == 1
    found = by_ip(answer)
    assert sorted(found) == ["10.0.0.1", "10.0.0.50", "10.0.0.60"]
    assert [s["agent_id"] for s in found["10.0.0.50"]["seen_by"]] == ["agent-scan2"]
    assert found["10.0.0.60"]["mac"] is None  # only the MAC-less sighting is left
    assert found["10.0.0.1"]["managed"]  # agent-scan still reports its interfaces


def test_load_domains_reads_only_what_is_asked(fleet: Database) -> None:
    with fleet.session() as session:
        pks = [h.last_report_pk for h in session.query(Host).order_by(Host.agent_id)]
        loaded = load_domains(
            session, [pk for pk in pks if pk is not None] + [10**9], ["discovery"]
        )
    assert 10**9 not in loaded  # no such report
    with_discovery = {pk for pk, domains in loaded.items() if "discovery" in domains}
    assert len(loaded) == 4 and len(with_discovery) == 3  # agent-web does not sweep
    assert all(set(domains) <= {"discovery"} for domains in loaded.values())
