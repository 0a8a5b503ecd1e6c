"""The audit's LAN section on a real database (SQLite and PostgreSQL), from discovery
facts reported through the real ingest service (tests/server/read/lan_fleet.py):
managed vs unmanaged, an audit as of a past date vs today, an agency with no sweeping
host, and risky ports flagged by the lan-discovery pack's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rules.language.loader import load_rules
from rules.language.model import RuleSet
from server.evaluation.loaded_policy import ServerPolicy
from server.ingest.service import IngestService
from server.read.audit import AuditPolicy, build_audit
from server.read.audit_views import AgencyAudit, AuditReport
from server.storage.database import Database
from tests.server.helpers import new_token
from tests.server.read import lan_fleet
from tests.server.read.lan_fleet import NAS_MAC, PRINTER_MAC, T0
from tests.server.reports.fleet import audit_policy

NOW = T0 + timedelta(days=1)
LAN_PACK = Path(__file__).parents[3] / "rules" / "packs" / "lan-discovery.yaml"
CAMERA_MAC = "00:40:8c:12:34:56"
HOSTILE_VENDOR = '=HYPERLINK("http://x")<script>alert(1)</script>\u202eAxis'


def with_lan_pack(policy: ServerPolicy) -> AuditPolicy:
    """The test policy plus the real lan-discovery pack, whose rules say which ports
    are risky (the server's test pack has none)."""
    judged = audit_policy(policy)
    packs = judged.ruleset.packs + load_rules([LAN_PACK]).packs
    return replace(judged, ruleset=RuleSet(packs=packs))


def audit(database: Database, policy: ServerPolicy, as_of: datetime) -> AuditReport:
    with database.session() as session:
        return build_audit(
            session, with_lan_pack(policy), as_of=as_of, agency=None, stale_after_seconds=86400
        )


def agencies(report: AuditReport) -> dict[str, AgencyAudit]:
    return {a.standing.agency: a for a in report.agencies}


def later_sweep(service: IngestService, token: str) -> None:
    """agent-scan sweeps again at T0+3h: a camera joined, with a hostile vendor name."""
    lan_fleet.report(
        service,
        token,
        "agent-scan",
        lan_fleet.host_domain("scan01", "10.0.0.1", "52:54:00:00:00:01"),
        seq=2,
        collected_at=T0 + timedelta(hours=3),
        discovery=lan_fleet.discovery(
            lan_fleet.device("10.0.0.50", NAS_MAC, lan_fleet.port(23, "telnet")),
            lan_fleet.device(
                "10.0.0.70",
                CAMERA_MAC,
                lan_fleet.port(3389, "ms-wbt-server"),
                vendor=HOSTILE_VENDOR,
            ),
        ),
    )


@pytest.fixture
def tokens(service: IngestService, database: Database) -> dict[str, str]:
    built = lan_fleet.build(service, database)
    add_so_c(service, database)
    return built


def add_so_c(service: IngestService, database: Database) -> None:
    """so-c: an enrolled host that never sweeps, and one whose sweep failed."""
    lan_fleet.report(
        service,
        new_token(database, "so-c"),
        "agent-c",
        lan_fleet.host_domain("app-c", "10.9.0.2", "52:54:00:00:0c:02"),
        collected_at=T0,
    )
    lan_fleet.report(
        service,
        new_token(database, "so-c"),
        "agent-c2",
        lan_fleet.host_domain("scan-c", "10.9.0.3", "52:54:00:00:0c:03"),
        collected_at=T0,
        errors=[{"domain": "discovery", "kind": "permission", "reason": "raw sockets denied"}],
    )


def test_managed_and_unmanaged_devices(
    tokens: dict[str, str], database: Database, policy: ServerPolicy
) -> None:
    lan = agencies(audit(database, policy, NOW))["so-a"].lan
    assert lan.assessed and lan.sweeping_hosts == ["scan01", "scan02"]
    # 10.0.0.1 (scan01 by IP) and 10.0.0.2 (web01 by MAC) are enrolled hosts.
    assert (lan.devices, lan.managed, lan.unmanaged, lan.risky_unmanaged) == (4, 2, 2, 1)
    nas, printer = lan.unmanaged_devices
    assert (nas.ips, nas.mac, nas.vendor) == (["10.0.0.50"], NAS_MAC, "Synology")
    assert [(p.port, p.service, p.risky_rule) for p in nas.ports] == [
        (23, "telnet", "LAN-TELNET-OPEN"),
        (445, "microsoft-ds", "LAN-SMB-OPEN"),
    ]
    assert nas.seen_by == ["scan01", "scan02"]
    assert nas.first_seen == T0 - timedelta(days=3)
    assert nas.last_seen == T0 + timedelta(hours=1)
    # The printer's 9100 is no risky service of the pack.
    assert printer.mac == PRINTER_MAC
    assert [(p.port, p.risky_rule) for p in printer.ports] == [(9100, None)]
    # so-b's scanner sees the same NAS on its own LAN: counted there, not merged.
    so_b = agencies(audit(database, policy, NOW))["so-b"].lan
    assert (so_b.devices, so_b.unmanaged) == (1, 1)
    assert [p.risky_rule for p in so_b.unmanaged_devices[0].ports] == ["LAN-DATABASE-OPEN"]


def test_agency_without_a_sweeping_host_is_not_assessed(
    tokens: dict[str, str], database: Database, policy: ServerPolicy
) -> None:
    report = audit(database, policy, NOW)
    so_c = agencies(report)["so-c"]
    assert so_c.standing.hosts == 2  # counted by the audit, yet no sweep succeeded
    lan = so_c.lan
    assert not lan.assessed and lan.sweeping_hosts == []
    assert lan.failed_sweeps == ["scan-c"]  # tried and failed: named, not a clean LAN
    assert agencies(report)["so-a"].lan.failed_sweeps == []
    assert (lan.devices, lan.managed, lan.unmanaged, lan.risky_unmanaged) == (None,) * 4
    assert report.model_dump(mode="json")["agencies"][2]["lan"]["unmanaged"] is None


def test_as_of_a_past_date_shows_the_lan_as_it_was(
    tokens: dict[str, str], service: IngestService, database: Database, policy: ServerPolicy
) -> None:
    # Between scan01's report (T0+1h) and scan02's (T0+2h): scan01 alone had swept.
    past = T0 + timedelta(minutes=90)
    before = agencies(audit(database, policy, past))["so-a"].lan
    assert before.sweeping_hosts == ["scan01"]
    assert [d.ips for d in before.unmanaged_devices] == [["10.0.0.50"], ["10.0.0.60"]]
    assert [p.port for p in before.unmanaged_devices[0].ports] == [23]  # SMB: scan02 only

    later_sweep(service, tokens["agent-scan"])
    again = agencies(audit(database, policy, past))["so-a"].lan
    assert again == before  # the newer sweep does not rewrite the past

    today = agencies(audit(database, policy, NOW))["so-a"].lan
    assert [d.ips[0] for d in today.unmanaged_devices] == ["10.0.0.50", "10.0.0.60", "10.0.0.70"]
    camera = today.unmanaged_devices[2]
    assert camera.vendor == HOSTILE_VENDOR  # stored as reported; the renderers escape it
    assert [p.risky_rule for p in camera.ports] == ["LAN-REMOTE-DESKTOP-OPEN"]
    assert today.risky_unmanaged == 2
