"""LAN-UNMANAGED-DEVICE through the real ingest service, on SQLite and PostgreSQL.

Hosts of two agencies report real-shaped facts (`host.interfaces`, a `discovery`
sweep as agent/discovery writes it); the collector adds `lan_managed` at evaluation
(server/evaluation/lan.py) and the discovering host's findings open for devices that
are no enrolled host of its agency, never for an enrolled host's MAC or IP, and
resolve when the device's host enrols and the discoverer is evaluated again: by the
re-evaluation the enrolment queues, or by the discoverer's next changed report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from sqlalchemy import select

from rules.facts import load_rule_schema
from server.config import ServerConfig
from server.evaluation import lan as lan_module
from server.evaluation.lan import DOMAIN, ManagedLan
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import Reevaluator
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.models import Finding, FindingStatus, Host, RuleResultRow
from tests.server.helpers import RULES_DIR, body_of, iso, make_facts, new_token
from tests.server.read.lan_fleet import device, discovery, host_domain, port

PACK = Path(__file__).resolve().parents[3] / "rules" / "packs" / "lan-discovery.yaml"
RULE = "LAN-UNMANAGED-DEVICE"
NAS_MAC = "00:11:32:aa:bb:cc"
WEB_MAC = "52:54:00:00:00:02"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


@pytest.fixture
def lan_policy(db_url: str, database: Database) -> ServerPolicy:
    loaded = load_server_policy(ServerConfig(db_url=db_url, rules=(PACK,)))
    assert loaded.lan is not None  # the pack's rule reads lan_managed
    # The same URL, through the test's own engine (the test drops its database after).
    return replace(loaded, lan=ManagedLan(db_url, database))


@pytest.fixture
def lan_service(
    database: Database, lan_policy: ServerPolicy, service: IngestService
) -> IngestService:
    service.policy = lan_policy
    return service


def report(
    service: IngestService,
    token: str,
    agent_id: str,
    host: dict[str, Any],
    at: datetime,
    **facts: Any,
) -> None:
    body = body_of(
        make_facts(
            agent_id=agent_id,
            seq=int(at.timestamp()),  # each report the agent's newest
            hostname=host["hostname"],
            host=host,
            collected_at=at,
            **facts,
        )
    )
    service.ingest(service.authenticate(token), body, None)


def sweep(*extra: dict[str, Any], at: datetime = T0) -> dict[str, Any]:
    """agent-scan's sweep of 10.0.0.0/24: the web server (enrolled), a NAS, a printer
    seen without its MAC (TCP connect), and another agency's host's MAC."""
    return discovery(
        device("10.0.0.2", WEB_MAC),
        device("10.0.0.50", NAS_MAC, port(23, "telnet"), vendor="Synology"),
        device("10.0.0.60", None, port(9100, "jetdirect", "connect"), found_by="connect"),
        device("10.0.0.70", "52:54:00:00:0b:01"),
        *extra,
        complete=True,
        swept_at=iso(at),
    )


def findings(database: Database, agent_id: str = "agent-scan") -> dict[str, FindingStatus]:
    with database.session() as session:
        rows = session.execute(
            select(Finding.item_key, Finding.status)
            .join(Host, Host.id == Finding.host_id)
            .where(Host.agent_id == agent_id, Finding.rule_id == RULE)
        )
        return {key: status for key, status in rows}


def result(database: Database, agent_id: str = "agent-scan") -> RuleResultRow:
    with database.session() as session:
        return session.scalars(
            select(RuleResultRow)
            .join(Host, Host.id == RuleResultRow.host_id)
            .where(Host.agent_id == agent_id, RuleResultRow.rule_id == RULE)
            .where(RuleResultRow.until_pk.is_(None))
        ).one()


def scanner_host() -> dict[str, Any]:
    """The `host` domain of the agency's discovering host (agent-scan)."""
    return host_domain("scan01", "10.0.0.1", "52:54:00:00:00:01")


def scanner_facts(swept: dict[str, Any]) -> dict[str, Any]:
    """A report of the discovering host with `swept` as its `discovery` domain."""
    return make_facts(agent_id="agent-scan", host=scanner_host(), discovery=swept)


def fleet(service: IngestService, database: Database) -> dict[str, str]:
    tokens = {
        a: new_token(database, "so-a")
        for a in ("agent-scan", "agent-web", "agent-nas", "agent-printer")
    }
    tokens["agent-b"] = new_token(database, "so-b")
    report(service, tokens["agent-web"], "agent-web", host_domain("web01", "10.0.0.2", WEB_MAC), T0)
    # Another agency's host with the MAC of 10.0.0.70: private LANs repeat, never matched.
    report(
        service,
        tokens["agent-b"],
        "agent-b",
        host_domain("b01", "10.0.0.70", "52:54:00:00:0b:01"),
        T0,
    )
    report(
        service,
        tokens["agent-scan"],
        "agent-scan",
        scanner_host(),
        T0 + timedelta(minutes=5),
        discovery=sweep(),
    )
    return tokens


def test_unmanaged_devices_open_findings_and_enrolled_hosts_do_not(
    lan_service: IngestService, database: Database
) -> None:
    fleet(lan_service, database)
    assert findings(database) == {
        NAS_MAC: FindingStatus.OPEN,
        "10.0.0.60": FindingStatus.OPEN,  # no MAC learnt: keyed by its IP
        "52:54:00:00:0b:01": FindingStatus.OPEN,  # so-b's host, not so-a's
    }
    row = result(database)
    assert row.status == "fail"
    assert {i["evidence"]["managed_agent_id"] for i in row.items} == {None}
    # Hosts that do not sweep: not applicable, no finding.
    assert result(database, "agent-web").status == "not_applicable"
    assert findings(database, "agent-web") == {}


def test_enrolment_queues_the_discoverer_and_its_finding_resolves(
    lan_service: IngestService, database: Database, lan_policy: ServerPolicy
) -> None:
    tokens = fleet(lan_service, database)
    reevaluator = Reevaluator(database)
    assert not reevaluator.pending(lan_policy)
    # The NAS enrols (its MAC), the printer too (by IP only: its MAC was never seen).
    report(
        lan_service,
        tokens["agent-nas"],
        "agent-nas",
        host_domain("nas01", "10.0.0.50", NAS_MAC),
        T0 + timedelta(minutes=10),
    )
    report(
        lan_service,
        tokens["agent-printer"],
        "agent-printer",
        host_domain("print01", "10.0.0.60", "00:1b:a9:01:02:03"),
        T0 + timedelta(minutes=11),
    )
    # Until the discoverer is evaluated again, its findings stay.
    assert findings(database)[NAS_MAC] is FindingStatus.OPEN
    assert lan_policy.lan is not None and lan_policy.lan.queued()
    assert reevaluator.pending(lan_policy)
    outcome = reevaluator.run(lan_policy)
    assert outcome.ran and outcome.hosts == 1  # agent-scan only: the one that sweeps
    assert findings(database) == {
        NAS_MAC: FindingStatus.RESOLVED,
        "10.0.0.60": FindingStatus.RESOLVED,
        "52:54:00:00:0b:01": FindingStatus.OPEN,
    }
    assert not lan_policy.lan.queued()
    assert not reevaluator.pending(lan_policy)


def test_without_the_queue_the_discoverers_next_changed_report_resolves_it(
    lan_service: IngestService, database: Database, lan_policy: ServerPolicy, db_url: str
) -> None:
    tokens = fleet(lan_service, database)
    # Another replica (or this one after a restart): nothing queued in its memory.
    lan_service.policy = replace(lan_policy, lan=ManagedLan(db_url, database))
    report(
        lan_service,
        tokens["agent-nas"],
        "agent-nas",
        host_domain("nas01", "10.0.0.50", NAS_MAC),
        T0 + timedelta(minutes=10),
    )
    assert findings(database)[NAS_MAC] is FindingStatus.OPEN
    report(
        lan_service,
        tokens["agent-scan"],
        "agent-scan",
        scanner_host(),
        T0 + timedelta(minutes=20),
        discovery=sweep(at=T0 + timedelta(minutes=15)),
    )
    assert findings(database)[NAS_MAC] is FindingStatus.RESOLVED
    assert findings(database)["10.0.0.60"] is FindingStatus.OPEN


def test_a_failed_or_empty_sweep_is_an_error_with_its_reason(
    lan_service: IngestService, database: Database
) -> None:
    tokens = fleet(lan_service, database)
    scan = scanner_host()
    failed = [
        {"domain": "discovery", "kind": "failed", "reason": "scan failed: Network is unreachable"}
    ]
    empty = discovery(complete=True, swept_at=iso(T0 + timedelta(minutes=40)))
    capped = sweep(at=T0 + timedelta(minutes=50)) | {"complete": False, "open_ports": None}
    cases: list[tuple[int, dict[str, Any], str]] = [
        (30, {"errors": failed}, "Network is unreachable"),
        (45, {"discovery": empty}, "found no device"),
        (55, {"discovery": capped}, "cut short"),
    ]
    for minutes, extra, reason in cases:
        at = T0 + timedelta(minutes=minutes)
        report(lan_service, tokens["agent-scan"], "agent-scan", scan, at, **extra)
        row = result(database)
        assert row.status == "error"
        assert reason in str(row.errors)


def test_an_agent_cannot_send_the_domain_and_policies_without_the_rule_read_nothing(
    lan_service: IngestService, database: Database, lan_policy: ServerPolicy
) -> None:
    tokens = fleet(lan_service, database)
    forged = {"enrolled_hosts": 1, "device_count": 1, "unmanaged_count": 0, "devices": []}
    report(
        lan_service,
        tokens["agent-scan"],
        "agent-scan",
        scanner_host(),
        T0 + timedelta(minutes=30),
        discovery=sweep(at=T0 + timedelta(minutes=25)),
        **{DOMAIN: forged},
    )
    assert result(database).status == "fail"
    assert findings(database)[NAS_MAC] is FindingStatus.OPEN
    assert load_server_policy(ServerConfig(rules=(RULES_DIR,))).lan is None


def test_the_domain_matches_its_published_schema(
    lan_service: IngestService, database: Database, lan_policy: ServerPolicy
) -> None:
    fleet(lan_service, database)
    assert lan_policy.lan is not None
    facts = scanner_facts(sweep())
    value = lan_policy.lan.enrich(facts, "so-a", "agent-scan")[DOMAIN]
    fastjsonschema.compile(load_rule_schema()["properties"][DOMAIN])(value)
    web = next(d for d in value["devices"] if d["mac"] == WEB_MAC)
    assert web["managed"] is True and web["managed_agent_id"] == "agent-web"
    assert (value["device_count"], value["unmanaged_count"], value["enrolled_hosts"]) == (4, 3, 2)


def test_the_queue_waits_for_the_new_host_to_be_committed_then_gives_up(
    lan_service: IngestService,
    database: Database,
    lan_policy: ServerPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet(lan_service, database)
    lan = lan_policy.lan
    assert lan is not None
    # A host evaluated whose report is never stored (refused or rolled back after).
    facts = make_facts(
        agent_id="agent-ghost", host=host_domain("ghost", "10.0.0.99", "02:00:00:00:00:99")
    )
    lan.enrich(facts, "so-a", "agent-ghost")
    assert lan.queued()
    reevaluator = Reevaluator(database)
    assert reevaluator.run(lan_policy).hosts == 1  # the discoverer, evaluated again
    assert lan.queued()  # its address is in no committed report: kept for the next run
    assert findings(database)[NAS_MAC] is FindingStatus.OPEN
    monkeypatch.setattr(lan_module, "QUEUE_SECONDS", 0.0)
    assert reevaluator.run(lan_policy).hosts == 0
    assert not lan.queued()  # given up: the daily re-evaluation covers it


def test_enrolled_hosts_that_cannot_be_read_are_an_error_without_the_detail(
    tmp_path: Path,
) -> None:
    # A database without the collector's tables: every read fails.
    broken = ManagedLan(f"sqlite:///{tmp_path / 'empty.db'}")
    facts = scanner_facts(sweep())
    enriched = broken.enrich(facts, "so-a", "agent-scan")
    assert DOMAIN not in enriched
    (entry,) = [e for e in enriched["errors"] if e["domain"] == DOMAIN]
    assert (
        entry["reason"] == "the agency's enrolled hosts could not be read (see the collector's log)"
    )


def test_a_sweep_whose_devices_have_no_address_is_an_error(lan_policy: ServerPolicy) -> None:
    assert lan_policy.lan is not None
    odd = discovery(device("10.0.0.50", NAS_MAC), complete=True)
    del odd["devices"][0]["ip"]  # what no agent sends (the schema requires it): still no pass
    facts = scanner_facts(odd)
    enriched = lan_policy.lan.enrich(facts, "so-a", "agent-scan")
    assert DOMAIN not in enriched
    assert enriched["errors"][-1]["reason"] == "the sweep reported no device with an address"
