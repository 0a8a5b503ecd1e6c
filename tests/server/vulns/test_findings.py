"""End to end on SQLite and PostgreSQL: the recorded Debian 12 facts ingested through
the real ingest service, matched against an imported store, turned into findings by
the vulnerabilities pack; upgrading resolves them, a new import re-evaluates every
host without a new report, a stale store puts the rules in error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rules.language.loader import builtin_packs_dir
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import Reevaluator
from server.ingest.service import IngestService, limits_of
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database
from server.storage.fact_store import load_facts
from server.storage.models import Finding, Host, Report, RuleResultRow
from server.storage.rule_results import in_effect
from server.vulns.feeds.detect import read_feed
from server.vulns.store import build_store
from tests.server.helpers import body_of, iso, new_token
from tests.server.vulns.conftest import DATA, FETCHED, import_samples, recorded_facts, with_kernels

NOW = datetime(2026, 12, 15, 8, 0, tzinfo=UTC)  # the fixes were first seen 16 days ago
PACK = builtin_packs_dir() / "vulnerabilities.yaml"


def _policy(store: Path, max_age_days: float = 30) -> ServerPolicy:
    config = ServerConfig(rules=(PACK,), vulndb_path=store, vulndb_max_age_days=max_age_days)
    return load_server_policy(config)


def _service(database: Database, policy: ServerPolicy) -> IngestService:
    config = ServerConfig()
    return IngestService(
        database, policy, limits_of(config), on_commit=HostStateCache().put, clock=lambda: NOW
    )


def _document(seq: int, **changes: Any) -> dict[str, Any]:
    facts = with_kernels(recorded_facts())
    facts.update(seq=seq, collected_at=iso(NOW), report_id=_uuid(seq), **changes)
    return facts


def _uuid(seq: int) -> str:
    return f"00000000-0000-4000-8000-{seq:012d}"


def _findings(database: Database) -> dict[tuple[str, str], str]:
    with database.session() as session:
        rows = session.scalars(select(Finding))
        return {(f.rule_id, f.item_key): str(f.status) for f in rows}


def _statuses(database: Database) -> dict[str, str]:
    with database.session() as session:
        host = session.scalars(select(Host)).one()
        assert host.results_report_pk is not None
        # The rows in effect (revision 0006 stores only the rules whose outcome changed).
        rows = session.execute(in_effect([host.results_report_pk], RuleResultRow))
        return {r.rule_id: str(r.status) for _at, r in rows}


def test_findings_lifecycle_from_feeds(database: Database, tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    import_samples(store, ("debian-tracker.json", "kev.json", "epss.csv"))
    policy = _policy(store)
    service = _service(database, policy)
    token = new_token(database)
    forged = _document(1, vulnerabilities={"count": 0, "items": []})  # an agent lying
    service.ingest(service.authenticate(token), body_of(forged), None)
    findings = _findings(database)
    kev = "VULN-KEV-FIX-AVAILABLE"
    high = "VULN-HIGH-FIX-AVAILABLE"
    assert {key for key, status in findings.items() if status == "open"} == {
        (kev, "CVE-2099-1001 openssl"),
        (kev, "CVE-2099-1012 linux"),
        (high, "CVE-2099-1001 openssl"),
        (high, "CVE-2099-1012 linux"),
    }  # glibc's fix is pending, bash/perl no-DSA, vim low: none of them fail
    with database.session() as session:
        report = session.scalars(select(Report)).one()
        assert "vulnerabilities" not in load_facts(session, report)  # never stored
        evidence = (
            session.scalars(
                select(Finding).where(Finding.rule_id == kev, Finding.item_key.like("%openssl"))
            )
            .one()
            .evidence
        )
    assert evidence["state"] == "fix_available" and evidence["fix_age_days"] == 16
    assert evidence["installed_version"] == "3.0.22-1~deb12u2"

    # The administrator upgrades openssl: its findings resolve with the next report.
    upgraded = _document(2)
    for package in upgraded["packages"]["items"]:
        if package["source"] == "openssl":
            package["version"] = package["source_version"] = "3.0.23-1~deb12u1"
    service.ingest(service.authenticate(token), body_of(upgraded), None)
    findings = _findings(database)
    assert findings[(kev, "CVE-2099-1001 openssl")] == "resolved"
    assert findings[(kev, "CVE-2099-1012 linux")] == "open"

    # A new tracker without the kernel CVE: re-evaluation, no new report needed.
    tracker = json.loads((DATA / "debian-tracker.json").read_text("utf-8"))
    del tracker["linux"]
    newer = tmp_path / "debian-tracker.json"
    newer.write_text(json.dumps(tracker), "utf-8")
    build_store(store, [read_feed(newer, FETCHED)], NOW)
    reloaded = _policy(store)
    assert reloaded.fingerprint != policy.fingerprint
    assert Reevaluator(database, clock=lambda: NOW).run(reloaded).hosts == 1
    assert _findings(database)[(kev, "CVE-2099-1012 linux")] == "resolved"

    # The store goes stale: the rules are in error, never clean.
    stale = _policy(store, max_age_days=5)
    assert Reevaluator(database, clock=lambda: NOW).run(stale).hosts == 1
    assert set(_statuses(database).values()) == {"error"}
    with database.session() as session:
        errors = session.scalars(select(RuleResultRow.errors)).all()
    assert any("stale" in json.dumps(e) for e in errors)
