"""Waivers, scopes and frameworks through `load_policy` and `evaluate_policy`."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rules.errors import RuleLoadError
from rules.language.loader import builtin_packs_dir
from rules.policy.bundle import Policy, Subject, evaluate_policy, load_policy
from rules.policy.frameworks import load_frameworks
from rules.policy.scopes import load_scopes
from rules.policy.scoring import (
    DEFAULT_WEIGHTS,
    RequirementStatus,
    pooled_score,
    requirement_status,
    score_results,
)
from rules.results import Status
from tests.rules.conftest import DATA, facts_document, listener

POLICY = DATA / "policy"
NETWORK_PACK = builtin_packs_dir() / "network-exposure.yaml"
TODAY = date(2026, 11, 27)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(
        [NETWORK_PACK],
        waivers=[POLICY / "waivers.yaml"],
        scopes=[POLICY / "scopes.yaml"],
        frameworks=[POLICY / "framework.yaml"],
    )


def results_by_rule(
    policy: Policy, subject: Subject, listening: list[dict[str, Any]]
) -> dict[str, Any]:
    evaluation = evaluate_policy(policy, facts_document(listening=listening), subject, TODAY)
    return {r.rule_id: r for r in evaluation.results}


def test_whole_rule_waiver_waives_and_leaves_the_score(policy: Policy) -> None:
    ftp = [listener(21, "0.0.0.0", process="vsftpd")]
    waived = results_by_rule(policy, Subject("so-tttt", "ftp01"), ftp)["NET-FTP-EXPOSED"]
    assert waived.status is Status.WAIVED
    assert waived.waiver is not None and waived.waiver["id"] == "W-2026-001"
    assert waived.items[0].waiver == "W-2026-001"
    assert waived.to_dict()["waiver"]["approved_by"] == "Nguyễn Văn A"
    other_host = results_by_rule(policy, Subject("so-tttt", "web01"), ftp)["NET-FTP-EXPOSED"]
    assert other_host.status is Status.FAIL
    other_agency = results_by_rule(policy, Subject("so-yte", "ftp01"), ftp)["NET-FTP-EXPOSED"]
    assert other_agency.status is Status.FAIL
    assert score_results([waived]).ratio is None
    assert score_results([other_host]).ratio == 0.0


def test_item_waiver_covers_only_its_item(policy: Policy) -> None:
    db = Subject("so-tttt", "db02")
    one = results_by_rule(policy, db, [listener(5432, "10.0.0.5")])["NET-DATABASE-EXPOSED"]
    assert one.status is Status.WAIVED
    two = results_by_rule(policy, db, [listener(5432, "10.0.0.5"), listener(3306, "0.0.0.0")])
    mixed = two["NET-DATABASE-EXPOSED"]
    assert mixed.status is Status.FAIL
    assert [(i.key, i.waiver) for i in mixed.items] == [
        ("tcp/10.0.0.5:5432", "W-2026-002"),
        ("tcp/0.0.0.0:3306", None),
    ]
    outside_group = results_by_rule(
        policy, Subject("so-tttt", "db10"), [listener(5432, "10.0.0.5")]
    )
    assert outside_group["NET-DATABASE-EXPOSED"].status is Status.FAIL


def test_expired_waiver_stops_applying_and_is_reported(policy: Policy) -> None:
    subject = Subject("so-tttt", "web01")
    evaluation = evaluate_policy(policy, facts_document(listening=[listener(3389)]), subject, TODAY)
    rdp = next(r for r in evaluation.results if r.rule_id == "NET-RDP-EXPOSED")
    assert rdp.status is Status.FAIL
    assert [w["id"] for w in evaluation.expired_waivers] == ["W-2025-009"]
    before = evaluate_policy(
        policy, facts_document(listening=[listener(3389)]), subject, date(2026, 6, 30)
    )
    assert next(r for r in before.results if r.rule_id == "NET-RDP-EXPOSED").status is Status.WAIVED
    assert before.expired_waivers == []


def test_errors_are_never_waived(policy: Policy) -> None:
    evaluation = evaluate_policy(policy, facts_document(), Subject("so-tttt", "ftp01"), TODAY)
    ftp = next(r for r in evaluation.results if r.rule_id == "NET-FTP-EXPOSED")
    assert ftp.status is Status.ERROR


@pytest.mark.parametrize(
    ("subject", "port_2323", "port_992"),
    [
        (Subject("so-yte", "web01"), Status.PASS, Status.PASS),  # rule default [23]
        (Subject("so-tttt", "web01"), Status.FAIL, Status.PASS),  # agency override
        (Subject("so-tttt", "db02"), Status.FAIL, Status.FAIL),  # group beats agency
        (Subject("so-tttt", "db01"), Status.PASS, Status.PASS),  # host beats group
    ],
)
def test_most_specific_parameter_override_wins(
    policy: Policy, subject: Subject, port_2323: Status, port_992: Status
) -> None:
    for port, expected in ((2323, port_2323), (992, port_992)):
        result = results_by_rule(policy, subject, [listener(port)])["NET-TELNET-EXPOSED"]
        assert result.status is expected, (subject, port)


def test_bad_waivers_report_every_problem(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as caught:
        load_policy([builtin_packs_dir()], waivers=[POLICY / "bad-waivers.yaml"])
    messages = [(p.line, p.message) for p in caught.value.problems]
    assert messages == [
        (2, "waiver is missing required field 'justification'"),
        (5, "'expires' must be a date YYYY-MM-DD, got '31/12/2026'"),
    ]
    # once the file loads, its references are checked against the rules and groups
    text = (POLICY / "bad-waivers.yaml").read_text(encoding="utf-8")
    second = "waivers:\n" + text[text.index("  - id: W-BAD-2") :]
    (tmp_path / "w.yaml").write_text(second, encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load_policy([builtin_packs_dir()], waivers=[tmp_path / "w.yaml"])
    text = "\n".join(p.message for p in caught.value.problems)
    assert "waiver 'W-BAD-2' names unknown rule 'NO-SUCH-RULE'" in text
    assert "waiver 'W-BAD-2' names unknown host group 'nobody'" in text


def test_bad_framework_reports_every_problem(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as caught:
        load_frameworks([POLICY / "bad-framework.yaml"])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "bad-framework.yaml:2:7: 'id' 'Bad Framework' does not match" in text
    assert "unknown group 'missing-group' (declare it under groups)" in text
    assert "confidence must be one of verified, unverified" in text
    framework = (POLICY / "framework.yaml").read_text(encoding="utf-8")
    (tmp_path / "framework.yaml").write_text(
        framework.replace("NET-FTP-EXPOSED", "NOT-A-RULE"), encoding="utf-8"
    )
    with pytest.raises(
        RuleLoadError, match=r"test-framework requirement '1\.1' names unknown rule 'NOT-A-RULE'"
    ):
        load_policy([builtin_packs_dir()], frameworks=[tmp_path / "framework.yaml"])


def test_fingerprint_changes_with_any_file(tmp_path: Path) -> None:
    for name in ("waivers.yaml", "scopes.yaml"):
        shutil.copy(POLICY / name, tmp_path / name)
    first = load_policy(
        [builtin_packs_dir()],
        waivers=[tmp_path / "waivers.yaml"],
        scopes=[tmp_path / "scopes.yaml"],
    )
    same = load_policy(
        [builtin_packs_dir()],
        waivers=[tmp_path / "waivers.yaml"],
        scopes=[tmp_path / "scopes.yaml"],
    )
    assert first.fingerprint == same.fingerprint
    text = (
        (tmp_path / "waivers.yaml").read_text(encoding="utf-8").replace("2027-03-31", "2027-04-30")
    )
    (tmp_path / "waivers.yaml").write_text(text, encoding="utf-8")
    changed = load_policy(
        [builtin_packs_dir()],
        waivers=[tmp_path / "waivers.yaml"],
        scopes=[tmp_path / "scopes.yaml"],
    )
    assert changed.fingerprint != first.fingerprint


def test_requirement_status_and_pooled_agency_score(policy: Policy) -> None:
    (framework,) = policy.frameworks
    covered, uncovered = framework.requirements
    assert uncovered.confidence == "unverified"
    telnet_host = results_by_rule(policy, Subject("so-yte", "a"), [listener(23)])
    clean_host = results_by_rule(policy, Subject("so-yte", "b"), [listener(22)])
    assert requirement_status(covered.rules, telnet_host) is RequirementStatus.FAIL
    assert requirement_status(covered.rules, clean_host) is RequirementStatus.PASS
    assert requirement_status(uncovered.rules, clean_host) is RequirementStatus.NOT_ASSESSED
    errors = {
        r.rule_id: r
        for r in evaluate_policy(policy, facts_document(), Subject("x", "c"), TODAY).results
    }
    assert requirement_status(covered.rules, errors) is RequirementStatus.ERROR
    pooled = pooled_score([telnet_host.values(), clean_host.values()])
    assert all(r.status is Status.PASS for r in clean_host.values())
    possible = sum(DEFAULT_WEIGHTS[r.severity] for r in clean_host.values())
    # host a fails only telnet (critical, weight 10); host b passes everything
    assert score_results(telnet_host.values()).ratio == pytest.approx((possible - 10) / possible)
    assert pooled.ratio == pytest.approx((possible - 10 + possible) / (2 * possible))


@pytest.mark.parametrize(
    "text",
    [
        "groups:\n  - id: web\n    members: [{host: 'web*'}]\n",
        "params:\n  - selector: {agency: so-tttt}\n    rule: NET-TELNET-EXPOSED\n"
        "    params: {ports: [23]}\n",
    ],
)
def test_a_scopes_file_may_hold_only_groups_or_only_params(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text(text, "utf-8")
    scopes = load_scopes([path])
    assert len(scopes.groups) + len(scopes.overrides) == 1


def test_a_scopes_key_of_the_wrong_shape_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "scopes.yaml"
    path.write_text("groups: {}\n", "utf-8")
    with pytest.raises(RuleLoadError, match="'groups' must be a list"):
        load_scopes([path])
