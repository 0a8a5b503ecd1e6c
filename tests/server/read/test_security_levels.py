"""Requirements judged at each host's security level (cấp độ), on reports stored
through the real ingest service in a real database (SQLite and PostgreSQL): the
audit's compliance, the read API's requirement scores and the metrics' requirement
ratio all leave a requirement above (or beside) the system's level out of the
judgement: "not applicable", never "not met" nor "not assessed".

The fleet (tests/server/reports/fleet.py) at its first period: so-a's web01 exposes
telnet (level 2), db01 is clean (level 3); so-b's app01 is clean (level 3); so-x's
host exposes telnet and has no declared level (judged by every requirement).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rules.policy.scopes import Scopes
from rules.policy.scoring import RequirementStatus
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostStateCache
from server.read.audit import build_audit
from server.read.audit_views import AuditReport, FrameworkCompliance
from server.read.queries import requirement_scores
from server.reports.html import render_html
from server.reports.text import Lang
from server.storage.database import Database
from tests.server.helpers import RULES_DIR
from tests.server.reports.fleet import BETWEEN, Fleet, audit_policy

DATA = Path(__file__).resolve().parent / "data"
FRAMEWORK = DATA / "levels-framework.yaml"
SCOPES = DATA / "levels-scopes.yaml"


def policy_of(*, levels: bool) -> ServerPolicy:
    scopes = (SCOPES,) if levels else ()
    return load_server_policy(
        ServerConfig(rules=(RULES_DIR,), frameworks=(FRAMEWORK,), scopes=scopes)
    )


@pytest.fixture
def fleet(database: Database, db_url: str) -> Fleet:
    built = Fleet(database, policy_of(levels=True), db_url)
    built.first_period()
    return built


def compliance(fleet: Fleet, policy: ServerPolicy, agency: str | None) -> AuditReport:
    with fleet.database.session() as session:
        return build_audit(
            session, audit_policy(policy), as_of=BETWEEN, agency=agency, stale_after_seconds=86400
        )


def statuses(framework: FrameworkCompliance) -> dict[str, RequirementStatus]:
    return {r.requirement: r.status for r in framework.requirements}


def test_audit_judges_each_requirement_at_its_levels(fleet: Fleet) -> None:
    report = compliance(fleet, policy_of(levels=True), None)
    by_agency = {a.standing.agency: a for a in report.agencies}
    so_a = by_agency["so-a"].frameworks[0]
    # L.1 (levels 3-5) sees db01 only: web01's telnet (level 2) is not its business.
    # L.2 (level 1) concerns no host of so-a, whose levels are all known.
    assert statuses(so_a) == {
        "L.1": RequirementStatus.PASS,
        "L.2": RequirementStatus.NOT_APPLICABLE,
        "L.3": RequirementStatus.PASS,
    }
    assert (so_a.met, so_a.not_met, so_a.not_assessed, so_a.not_applicable, so_a.other) == (
        2,
        0,
        0,
        1,
        0,
    )
    rows = {r.requirement: r for r in so_a.requirements}
    assert rows["L.1"].levels == [3, 4, 5] and rows["L.1"].failing_hosts == []
    assert rows["L.3"].levels == []
    hosts = {h.host: h.security_level for h in by_agency["so-a"].hosts}
    assert hosts == {"web01": 2, "db01": 3}
    # so-b (level 3): L.2 not applicable; so-x (level unknown): judged by everything.
    assert statuses(by_agency["so-b"].frameworks[0])["L.2"] is RequirementStatus.NOT_APPLICABLE
    so_x = by_agency["so-x"].frameworks[0]
    assert statuses(so_x) == {
        "L.1": RequirementStatus.FAIL,
        "L.2": RequirementStatus.FAIL,
        "L.3": RequirementStatus.PASS,
    }
    assert so_x.not_applicable == 0
    assert [h.security_level for h in by_agency["so-x"].hosts] == [None]


def test_without_levels_every_requirement_judges_every_host(fleet: Fleet) -> None:
    report = compliance(fleet, policy_of(levels=False), "so-a")
    so_a = report.agencies[0].frameworks[0]
    assert statuses(so_a) == {
        "L.1": RequirementStatus.FAIL,
        "L.2": RequirementStatus.FAIL,
        "L.3": RequirementStatus.PASS,
    }
    assert so_a.not_applicable == 0
    assert {r.requirement: r.failing_hosts for r in so_a.requirements}["L.1"] == ["web01"]


def test_html_shows_levels_and_not_applicable(fleet: Fleet) -> None:
    report = compliance(fleet, policy_of(levels=True), "so-a")
    vi = render_html(report, Lang.VI).decode()
    en = render_html(report, Lang.EN).decode()
    assert "Không áp dụng: 1" in vi and "Cấp độ 3, 4, 5" in vi
    assert "Not applicable: 1" in en and "Levels 3, 4, 5" in en
    # the summary names the hosts' levels
    assert "<td>Cấp độ an toàn hệ thống thông tin của máy chủ</td><td>2, 3</td>" in vi


def test_read_api_requirement_scores_at_levels(fleet: Fleet) -> None:
    policy = policy_of(levels=True)
    with fleet.database.session() as session:
        so_a = requirement_scores(
            session,
            policy.frameworks,
            "test-levels",
            policy.weights,
            "so-a",
            scopes=policy.policy.scopes,
        )
        province = requirement_scores(
            session,
            policy.frameworks,
            "test-levels",
            policy.weights,
            None,
            scopes=policy.policy.scopes,
        )
        unlevelled = requirement_scores(
            session, policy.frameworks, "test-levels", policy.weights, "so-a"
        )
    assert so_a is not None and province is not None and unlevelled is not None
    rows = {r["requirement"]: r for r in so_a}
    assert (rows["L.1"]["score"], rows["L.1"]["hosts"], rows["L.1"]["failing"]) == (1.0, 1, 0)
    assert rows["L.2"] | {"rules": None} == {
        "requirement": "L.2",
        "rules": None,
        "levels": [1],
        "applicable": False,
        "hosts": 0,
        "score": None,
        "failing": 0,
    }
    # Over the province, L.2 judges so-x's host only (unknown level): it fails.
    whole = {r["requirement"]: r for r in province}
    assert (whole["L.2"]["applicable"], whole["L.2"]["hosts"], whole["L.2"]["score"]) == (
        True,
        1,
        0.0,
    )
    assert whole["L.1"]["hosts"] == 4 - 1  # every host but web01 (level 2)
    # Without scopes: every host, as before levels existed.
    plain = {r["requirement"]: r for r in unlevelled}
    assert plain["L.2"]["hosts"] == 2 and plain["L.2"]["score"] == pytest.approx(1 / 2)


def ratios(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "canhgac_framework_requirement_ratio":
                out[(sample.labels["agency"], sample.labels["requirement"])] = sample.value
    return out


def test_metrics_requirement_ratio_at_levels(fleet: Fleet, database: Database) -> None:
    policy = policy_of(levels=True)
    current: list[Scopes | None] = [policy.policy.scopes]
    replica = HostStateCache()
    replica.refresh(database)
    exporter, _ = build_registry(
        replica,
        "1",
        rules=lambda: policy.ruleset.rules,
        frameworks=lambda: policy.frameworks,
        weights=lambda: policy.weights,
        scopes=lambda: current[0],
    )
    got = ratios(exporter.render().decode())
    # so-a: L.1 over db01 alone (passes); L.2 over nobody: absent, not 0.
    assert got[("so-a", "L.1")] == 1.0
    assert ("so-a", "L.2") not in got and ("so-b", "L.2") not in got
    assert got[("so-x", "L.2")] == 0.0  # unknown level: judged
    assert got[("so-a", "L.3")] == 1.0
    # The scopes file loses its levels (a reload): every host is judged again.
    current[0] = None
    got = ratios(exporter.render().decode())
    assert got[("so-a", "L.1")] == pytest.approx(1 / 2)
    assert got[("so-a", "L.2")] == pytest.approx(1 / 2)
    assert got[("so-b", "L.2")] == 1.0
    # And back: the hosts move to their levels' counts again.
    current[0] = policy.policy.scopes
    got = ratios(exporter.render().decode())
    assert got[("so-a", "L.1")] == 1.0 and ("so-a", "L.2") not in got
