"""Loading packs: good files load; each kind of bad file gives a located problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import RuleLoadError
from rules.language.loader import builtin_packs_dir, load_pack_text, load_rules
from rules.language.model import Leaf, Quantified, Quantifier, Severity
from rules.language.operators import Operator
from tests.rules.conftest import DATA


def problems_of(name: str) -> list[str]:
    with pytest.raises(RuleLoadError) as caught:
        load_rules([DATA / "bad" / name])
    return [str(p) for p in caught.value.problems]


def test_builtin_packs_load() -> None:
    ruleset = load_rules([builtin_packs_dir()])
    ids = [rule.id for rule in ruleset.rules]
    assert "NET-TELNET-EXPOSED" in ids
    assert len(ids) == len(set(ids))
    telnet = ruleset.get("NET-TELNET-EXPOSED")
    assert telnet is not None
    assert telnet.severity is Severity.CRITICAL
    assert isinstance(telnet.check, Quantified)
    assert telnet.check.quantifier is Quantifier.FOR_NONE
    assert telnet.params == {"ports": (23,)}
    assert telnet.source.endswith("network-exposure.yaml:11:5")


def test_yaml_syntax_error_is_located() -> None:
    (problem,) = problems_of("yaml-syntax.yaml")
    file = str(DATA / "bad" / "yaml-syntax.yaml")
    assert problem.startswith(f"{file}:5:6: YAML: expected ',' or '}}'")


def test_unknown_operator_names_line_and_known_operators() -> None:
    (problem,) = problems_of("unknown-operator.yaml")
    assert ":8:38: unknown operator 'equals'" in problem
    assert "version_lt" in problem


def test_duplicate_rule_id_points_at_second_definition() -> None:
    (problem,) = problems_of("duplicate-id.yaml")
    assert ":10:5: duplicate rule id 'DUP-ONE' (first defined at " in problem
    assert "duplicate-id.yaml:3:5" in problem


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    src = (DATA / "bad" / "duplicate-id.yaml").read_text(encoding="utf-8")
    first, _, _ = src.partition("  - id: DUP-ONE\n    title: {vi: Thử lại")
    (tmp_path / "a.yaml").write_text(first, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(first.replace("dup-id", "dup-id-b"), encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path])
    (problem,) = caught.value.problems
    assert problem.file.endswith("b.yaml")
    assert "a.yaml:3:5" in problem.message


def test_missing_field() -> None:
    (problem,) = problems_of("missing-field.yaml")
    assert ":3:5: rule is missing required field 'severity'" in problem


def test_value_type_error() -> None:
    (problem,) = problems_of("value-type.yaml")
    assert ":8:45: operator 'in' needs a list value, got number" in problem


def test_duplicate_key_is_a_problem_not_last_wins() -> None:
    (problem,) = problems_of("duplicate-key.yaml")
    assert ":6:5: duplicate key 'severity' (first defined at line 5)" in problem


def test_every_problem_of_a_file_at_once() -> None:
    problems = problems_of("many-problems.yaml")
    text = "\n".join(problems)
    assert "'id' 'lower-case-id' does not match" in text
    assert "severity 'urgent' is not one of critical | high | medium | low | info" in text
    assert "'rationale.en' must be a non-empty string" in text
    assert "'for_none' at the top of a check needs 'key'" in text
    assert "operator 'matches' invalid regular expression" in text
    assert "'message.vi': unbalanced '{'" in text
    assert "unknown field 'colour' in rule" in text
    assert len(problems) == 7
    with pytest.raises(RuleLoadError) as caught:
        load_rules([DATA / "bad" / "many-problems.yaml"])
    lines = [p.line for p in caught.value.problems]
    assert lines == sorted(lines)
    assert set(lines) == {3, 5, 6, 10, 11, 12, 13}


def test_yaml_11_booleans_and_dates_stay_strings() -> None:
    text = """
pack: {id: strings, version: 1.0.0, title: {vi: Chuỗi, en: Strings}}
rules:
  - id: SSH-ROOT
    title: {vi: Thử, en: Test}
    severity: high
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check: {path: ssh.permit_root_login, op: eq, value: no}
    message: {vi: Thử, en: Test}
"""
    pack, problems = load_pack_text(text, "strings.yaml")
    assert problems == []
    assert pack is not None
    check = pack.rules[0].check
    assert isinstance(check, Leaf)
    assert check.op is Operator.EQ
    assert check.value == "no"


def test_unknown_param_reference(tmp_path: Path) -> None:
    text = (DATA / "good" / "engine-cases.yaml").read_text(encoding="utf-8")
    bad = text.replace("{param: min_kernel}", "{param: min_kernal}")
    _, problems = load_pack_text(bad, "p.yaml")
    assert [p.message for p in problems] == [
        "unknown parameter 'min_kernal' (declare it under the rule's params)"
    ]


def test_empty_all_and_not_a_mapping() -> None:
    text = """
pack: {id: empty, version: 1.0.0, title: {vi: Rỗng, en: Empty}}
rules:
  - id: EMPTY-ALL
    title: {vi: Thử, en: Test}
    severity: low
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check: {all: []}
    message: {vi: Thử, en: Test}
  - not a rule
"""
    _, problems = load_pack_text(text, "e.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (9, "'all' needs a non-empty list of expressions"),
        (11, "a rule must be a mapping"),
    ]


def test_no_rule_files(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match="no rule files found"):
        load_rules([tmp_path])


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"pack: \xff\xfe")
    with pytest.raises(RuleLoadError, match="cannot read rule file"):
        load_rules([path])


def test_rule_id_length_is_capped() -> None:
    text = (DATA / "bad" / "missing-field.yaml").read_text(encoding="utf-8")
    long_id = "LONG-" + "X" * 70
    _, problems = load_pack_text(text.replace("MISSING-SEVERITY", long_id), "long.yaml")
    assert any(f"'id' '{long_id}' does not match" in p.message for p in problems)
