"""The audit model on a real database (SQLite and PostgreSQL), filled through ingest:
numbers, ranking, compliance, findings, and reproducibility with `as_of`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from rules.policy.scoring import RequirementStatus
from server.errors import NotFoundError
from server.evaluation.loaded_policy import ServerPolicy
from server.read.audit import AuditPolicy, build_audit
from server.read.audit_views import AuditReport, ExclusionReason, UnreadKind
from server.storage.database import Database
from server.storage.models import FindingStatus, Host, Report, RuleResultRow
from tests.server.reports.fleet import AFTER, BETWEEN, HOSTILE_HOST, T1, Fleet, audit_policy
from tests.server.reports.fleet import server_policy as make_policy

STALE = 3 * 86400


@pytest.fixture(scope="module")
def policy() -> ServerPolicy:
    return make_policy()


@pytest.fixture
def rules(policy: ServerPolicy) -> AuditPolicy:
    return audit_policy(policy)


@pytest.fixture
def fleet(database: Database, policy: ServerPolicy, db_url: str) -> Fleet:
    built = Fleet(database, policy, db_url)
    built.first_period()
    return built


def audit(
    fleet: Fleet, rules: AuditPolicy, as_of: datetime, agency: str | None, **kw: datetime
) -> AuditReport:
    with fleet.database.session() as session:
        return build_audit(
            session, rules, as_of=as_of, agency=agency, stale_after_seconds=STALE, **kw
        )


def test_agency_audit_between_periods(fleet: Fleet, rules: AuditPolicy) -> None:
    report = audit(fleet, rules, BETWEEN, "so-a")
    assert report.scope == "agency"
    assert [a.standing.agency for a in report.agencies] == ["so-a"]
    so_a = report.agencies[0]
    # web01: telnet (critical, 10) fails, arch (2) and version (1) pass = 3/13;
    # db01 passes 13/13; pooled (docs/scoring.md) = 16/26.
    assert so_a.standing.score == pytest.approx(16 / 26)
    assert so_a.standing.hosts == 2
    assert so_a.standing.stale_hosts == 0
    assert so_a.standing.previous_score is None and so_a.standing.change is None
    # so-b (1.0) first, so-a second, so-x (also failing telnet on its one host) third.
    assert [(s.agency, s.rank) for s in report.ranking] == [("so-b", 1), ("so-a", 2), ("so-x", 3)]
    assert so_a.excluded_hosts == []
    assert so_a.severity_counts.critical == 1
    assert so_a.severity_counts.high == 0
    [finding] = so_a.findings
    assert (finding.host, finding.rule_id, finding.status) == ("web01", "TEST-TELNET", "open")
    assert finding.item_key == "tcp/0.0.0.0:23"
    assert finding.first_seen == T1
    assert finding.age_days == pytest.approx(16 / 24)
    assert finding.remediation.en == "Disable telnet."
    assert finding.evidence["process"] == "inetd"
    [action] = so_a.urgent_actions
    assert (action.rule_id, action.hosts, action.findings) == ("TEST-TELNET", 1, 1)
    [framework] = so_a.frameworks
    statuses = {
        r.requirement: (r.status, r.confidence, r.failing_hosts) for r in framework.requirements
    }
    assert statuses == {
        "N.1": (RequirementStatus.FAIL, "verified", ["web01"]),
        "N.2": (RequirementStatus.PASS, "unverified", []),
        "N.3": (RequirementStatus.NOT_ASSESSED, "unverified", []),
    }
    assert (framework.met, framework.not_met, framework.not_assessed, framework.other) == (
        1,
        1,
        1,
        0,
    )


def test_as_of_reproduces_the_past_after_more_reports(fleet: Fleet, rules: AuditPolicy) -> None:
    before = audit(fleet, rules, BETWEEN, None)
    fleet.second_period()
    again = audit(fleet, rules, BETWEEN, None)
    assert again.model_dump() == before.model_dump()
    # ...while the later cut-off sees the second period: web01 fixed, new01 exposed.
    later = audit(fleet, rules, AFTER, None, previous_as_of=BETWEEN)
    agencies = {a.standing.agency: a for a in later.agencies}
    assert agencies["so-a"].findings == []
    assert agencies["so-a"].standing.score == 1.0
    assert agencies["so-a"].standing.change == pytest.approx(1.0 - 16 / 26)
    # Four even steps from BETWEEN to AFTER; web01 is fixed only at T2 (after the 3rd).
    trend = agencies["so-a"].standing.trend
    assert [p.at.day for p in trend] == [2, 3, 4, 5, 6]
    assert [p.score for p in trend] == pytest.approx([16 / 26] * 4 + [1.0])
    [new01] = agencies["so-b"].findings
    assert (new01.host, new01.status) == ("new01", FindingStatus.WAIVED)
    assert agencies["so-b"].waived_findings == 1
    assert agencies["so-b"].urgent_actions == []  # a waived finding is no action
    assert agencies["so-b"].standing.hosts == 2
    # web01's telnet finding: first seen T1, resolved T2, inside (BETWEEN, AFTER].
    remediation = agencies["so-a"].remediation
    assert (remediation.resolved, remediation.open) == (1, 0)
    assert remediation.median_days == pytest.approx(4.0)


def test_waivers_in_force_and_expired(fleet: Fleet, rules: AuditPolicy) -> None:
    report = audit(fleet, rules, BETWEEN, None)
    waivers = {a.standing.agency: a.waivers for a in report.agencies}
    assert [(w.id, w.in_force) for w in waivers["so-a"]] == [("W-A-OLD", False)]
    assert [(w.id, w.in_force, w.host) for w in waivers["so-b"]] == [("W-B-TELNET", True, "new*")]
    assert waivers["so-x"] == []
    so_a = next(a for a in report.agencies if a.standing.agency == "so-a")
    assert so_a.remediation.open == 1 and so_a.remediation.resolved == 0
    assert so_a.remediation.oldest_open_days == pytest.approx(16 / 24)


def test_before_any_report_scores_are_unknown_not_zero(fleet: Fleet, rules: AuditPolicy) -> None:
    report = audit(fleet, rules, datetime(2026, 1, 1, tzinfo=UTC), None)
    assert {s.score for s in report.ranking} == {None}
    assert all(a.findings == [] and a.standing.hosts == 0 for a in report.agencies)
    # No evaluated rule: every requirement is "not assessed", never "met".
    statuses = {r.status for a in report.agencies for f in a.frameworks for r in f.requirements}
    assert statuses == {RequirementStatus.NOT_ASSESSED}


def test_stale_hosts_counted_at_the_cut_off(fleet: Fleet, rules: AuditPolicy) -> None:
    report = audit(fleet, rules, AFTER, "so-b")
    # app01 last reported at T1, five days before AFTER (stale after three days).
    assert report.agencies[0].standing.stale_hosts == 1
    app01 = next(h for h in report.agencies[0].hosts if h.host == "app01")
    assert app01.stale and app01.security_updates is None
    [updates, _certificates] = app01.unread
    assert (updates.kind, updates.reason) == (UnreadKind.PERMISSION, "apt: Permission denied")


def test_hostile_strings_are_kept_as_data(fleet: Fleet, rules: AuditPolicy) -> None:
    [so_x] = audit(fleet, rules, BETWEEN, "so-x").agencies
    # The model stores exactly what the host said; escaping is each renderer's job.
    assert so_x.findings[0].host == HOSTILE_HOST
    assert so_x.findings[0].status is FindingStatus.OPEN


def test_unknown_agency_is_not_found(fleet: Fleet, rules: AuditPolicy) -> None:
    with pytest.raises(NotFoundError):
        audit(fleet, rules, BETWEEN, "so-none")


def test_hosts_patch_state_certificates_and_exposure(fleet: Fleet, rules: AuditPolicy) -> None:
    [so_a] = audit(fleet, rules, BETWEEN, "so-a").agencies
    db01, web01 = so_a.hosts
    assert (db01.host, web01.host) == ("db01", "web01")
    assert db01.security_updates == 1 and db01.reboot_required is True
    assert db01.oldest_security_update == datetime(2026, 2, 20, 8, 0, tzinfo=UTC)
    [cert] = db01.certificates  # the one a year away is beyond 90 days
    assert (cert.subject, cert.days_left) == ("CN=db01.so-a.gov.vn", 29)
    assert db01.exposed_services == []  # telnet on loopback only
    assert db01.unread == []
    assert [(s.address, s.port) for s in web01.exposed_services] == [("0.0.0.0", 23)]
    # web01 sent no updates and no certificates: unknown, never "none pending".
    assert web01.security_updates is None and web01.reboot_required is None
    assert [(u.domain, u.kind) for u in web01.unread] == [
        ("updates", UnreadKind.ABSENT),
        ("certificates", UnreadKind.ABSENT),
    ]
    assert web01.score == pytest.approx(3 / 13)


def test_host_without_results_is_excluded_with_its_reason(fleet: Fleet, rules: AuditPolicy) -> None:
    # What retention or a skipped evaluation leaves: a report whose results are gone.
    # Deleted here with SQL because no shipped code path does it to a newest report.
    with fleet.database.write() as session:
        host = session.scalars(select(Host).where(Host.agent_id == "agent-db")).one()
        pks = select(Report.id).where(Report.host_id == host.id)
        session.execute(delete(RuleResultRow).where(RuleResultRow.report_pk.in_(pks)))
    [so_a] = audit(fleet, rules, BETWEEN, "so-a").agencies
    assert [(e.host, e.reason) for e in so_a.excluded_hosts] == [
        ("db01", ExclusionReason.NOT_EVALUATED)
    ]
    assert so_a.standing.hosts == 1  # web01 only
    assert so_a.standing.score == pytest.approx(3 / 13)
