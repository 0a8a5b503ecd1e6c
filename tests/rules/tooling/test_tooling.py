"""`rules lint`, `rules test`, `rules list` and `rules explain`, over shipped and bad inputs."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from rules.facts import load_schema
from rules.language.loader import builtin_packs_dir, load_rules
from rules.tooling.cli import rules_group
from rules.tooling.fixtures import builtin_fixtures_dir, load_fixtures, run_fixtures
from rules.tooling.lint import lint_rules
from tests.rules.conftest import DATA

LINT = DATA / "lint"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(rules_group, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_shipped_fixture_passes() -> None:
    ruleset = load_rules([builtin_packs_dir()])
    outcomes = run_fixtures(ruleset, load_fixtures([builtin_fixtures_dir()]))
    failed = [(o.case.source, o.case.name, o.problem) for o in outcomes if not o.ok]
    assert failed == []
    assert len(outcomes) >= 2 * len(ruleset.rules)


def test_shipped_policy_lints_clean() -> None:
    code, out, err = invoke("lint")
    assert code == 0, err
    assert out.startswith("OK: ")


def test_lint_finds_paths_missing_from_the_schema() -> None:
    ruleset = load_rules([LINT / "typo-pack.yaml"])
    problems = [p.message for p in lint_rules(ruleset, load_schema(), [])]
    assert (
        "TYPO-PATHS: path 'host.os.familly' is not in the facts schema (facts has no 'familly')"
        in problems
    )
    assert "TYPO-PATHS: path 'prot' is not in the facts schema (item has no 'prot')" in problems
    assert "TYPO-PATHS: path 'adress' is not in the facts schema (item has no 'adress')" in problems
    assert (
        "TYPO-PATHS: path '$.host.hostnam' is not in the facts schema (facts has no 'hostnam')"
        in problems
    )
    assert "TYPO-PATHS: template names undeclared parameter 'params.missing'" in problems
    assert "TYPO-NOT-A-LIST: 'host.hostname' is not a list in the facts schema" in problems
    assert "TYPO-PATHS: no fixture case with status pass and fail" in problems


def test_lint_requires_pass_and_fail_fixtures() -> None:
    ruleset = load_rules([LINT / "typo-pack.yaml"])
    fixtures = load_fixtures([LINT / "typo-pack.fixtures.yaml"])
    problems = [p.message for p in lint_rules(ruleset, load_schema(), fixtures)]
    assert "TYPO-PATHS: no fixture case with status fail" in problems
    assert "TYPO-NOT-A-LIST: no fixture case with status pass and fail" in problems


def test_rules_test_reports_each_disagreement() -> None:
    code, out, err = invoke(
        "test", str(LINT / "typo-pack.fixtures.yaml"), "--rules", str(LINT / "typo-pack.yaml")
    )
    assert code == 1
    assert out.strip() == "rule fixtures: 0 passed, 3 failed"
    assert "UNKNOWN-RULE 'names a rule that does not exist': unknown rule 'UNKNOWN-RULE'" in err
    assert "'wrong expectation': expected pass, got error" in err
    assert "typo-pack.fixtures.yaml:11:5:" in err


def test_rules_test_shipped() -> None:
    code, out, _ = invoke("test")
    assert code == 0
    assert out.startswith("rule fixtures: ") and out.strip().endswith(" 0 failed")


def test_malformed_fixture_file_is_located(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pack: x\ncases:\n  - rule: A\n    name: n\n    facts: []\n    expect: {status: maybe}\n"
    )
    code, _, err = invoke("test", str(bad))
    assert code == 1
    assert f"{bad}:5:12: 'facts' must be a mapping (a facts fragment)" in err
    assert f"{bad}:6:22: expected status must be one of" in err


def test_empty_facts_of_a_case_is_located_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "empty.yaml"
    bad.write_text(
        "pack: x\ncases:\n  - rule: A\n    name: n\n    facts:\n    expect: {status: pass}\n"
    )
    code, _, err = invoke("test", str(bad))
    assert code == 1
    assert f"{bad}:5:" in err and "'facts' must be a mapping (a facts fragment)" in err
    assert "Traceback" not in err


def test_explain_in_both_languages() -> None:
    code, out, _ = invoke("explain", "net-ftp-exposed", "--lang", "vi")
    assert code == 0
    assert out.startswith("NET-FTP-EXPOSED: Dịch vụ FTP mở ra mạng")
    assert (
        'Kiểm tra: không phần tử nào của listening thỏa mãn (protocol eq "tcp" VÀ port in tham số ports (= [21])'
        in out
    )
    code, out, _ = invoke("explain", "NET-FTP-EXPOSED", "--lang", "en")
    assert "Checks: no item of listening satisfies" in out
    assert "How to fix:" in out
    code, _, err = invoke("explain", "NOPE")
    assert code == 2
    assert "unknown rule 'NOPE'" in err


def test_list_shows_frameworks_column() -> None:
    code, out, _ = invoke(
        "list", "--frameworks", str(DATA / "policy" / "framework.yaml"), "--lang", "en"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SEVERITY", "PACK", "FRAMEWORKS", "TITLE"]
    telnet = next(line for line in lines if line.startswith("NET-TELNET-EXPOSED"))
    assert "test-framework" in telnet
    rdp = next(line for line in lines if line.startswith("NET-RDP-EXPOSED"))
    assert " - " in rdp


def test_lint_checks_fixture_documents_against_the_schema(tmp_path: Path) -> None:
    code, _, err = invoke(
        "lint",
        "--rules",
        str(LINT / "typo-pack.yaml"),
        "--fixtures",
        str(LINT / "typo-pack.fixtures.yaml"),
        "--frameworks",
        str(tmp_path),  # no frameworks: they would name rules this pack lacks
    )
    assert code == 1
    assert "TYPO-PATHS 'wrong expectation': facts do not match the schema: data.listening[0]" in err
