"""Property-based tests of the rule engine and the rule loader (hypothesis, issue 14).

- Random valid rules (built from every operator and expression form, loaded through
  the real loader) against random facts documents: `evaluate` never raises, never
  hits an internal error (an exception other than EvaluationError, which the engine
  logs as its own bug), its statuses are coherent (fail has items, error has its
  reasons, pass has neither), and it is deterministic: the same answer twice and on
  a deep copy, and the facts are left untouched.
- Random YAML (random structures, mutations of a valid pack, arbitrary text): the
  loader answers a pack or located problems, and `load_rules` raises nothing but
  RuleLoadError whose every problem names the file and a 1-based line and column.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from rules.engine import evaluate
from rules.errors import RuleLoadError
from rules.language.loader import load_pack_text, load_rules
from rules.language.model import RuleSet
from rules.results import Status

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SOURCE = "random.yaml"

# Facts: a few known names, so rules and documents meet often, with any JSON below.
NAMES = ("a", "b", "port", "name", "items", "host")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["1.2.3", "10.0.0.5", "::1", "6.1.0-13-amd64", "2:1.0~rc1", ""])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner),
    max_leaves=25,
)
ITEM = st.dictionaries(st.sampled_from(("port", "name", "a")), JSON, max_size=3)
FACTS = st.fixed_dictionaries(
    {},
    optional={
        "a": JSON,
        "b": JSON,
        "host": st.dictionaries(st.sampled_from(("a", "name", "port")), JSON),
        "items": st.lists(ITEM | JSON, max_size=5),
        "collectors": st.dictionaries(st.sampled_from(NAMES), JSON, max_size=2),
    },
)

PATHS = st.sampled_from(["a", "b", "a.b", "host.name", "host.port", "host.a.b", "items"])
ITEM_PATHS = st.sampled_from(["port", "name", "a", "a.b"])
SCALAR_VALUES = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
VALUES: dict[str, st.SearchStrategy[Any] | None] = {
    "eq": SCALAR_VALUES,
    "ne": SCALAR_VALUES,
    "lt": st.integers(-1000, 1000) | st.text(max_size=4),
    "le": st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
    "gt": st.integers(-1000, 1000),
    "ge": st.integers(-1000, 1000) | st.text(max_size=4),
    "in": st.lists(SCALAR_VALUES, max_size=4),
    "not_in": st.lists(SCALAR_VALUES, max_size=4),
    "contains": SCALAR_VALUES,
    "not_contains": SCALAR_VALUES,
    "matches": st.sampled_from(["^a", "[0-9]+", "x|y", "^$", "(?i)root"]),
    "not_matches": st.sampled_from(["^a", "[0-9]+", ".*"]),
    "exists": None,
    "absent": None,
    "defined": None,
    "version_lt": st.sampled_from(["1.0", "6.1", "2:1.0~rc1"]),
    "version_le": st.sampled_from(["1.0", "6.1"]),
    "version_gt": st.sampled_from(["0", "1.2.3"]),
    "version_ge": st.sampled_from(["6.1", "1.0.0-1"]),
    "in_cidr": st.sampled_from(["10.0.0.0/8", "::1/128", "0.0.0.0/0"]),
    "not_in_cidr": st.sampled_from(["127.0.0.0/8", "fe80::/10"]),
}


@st.composite
def leaf(draw: st.DrawFn, paths: st.SearchStrategy[str]) -> dict[str, Any]:
    op = draw(st.sampled_from(sorted(VALUES)))
    node: dict[str, Any] = {"path": draw(paths), "op": op}
    values = VALUES[op]
    if values is not None:
        node["value"] = draw(values)
    return node


def expressions(paths: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf(paths),
        lambda inner: (
            st.builds(lambda parts: {"all": parts}, st.lists(inner, min_size=1, max_size=3))
            | st.builds(lambda parts: {"any": parts}, st.lists(inner, min_size=1, max_size=3))
            | st.builds(lambda part: {"not": part}, inner)
        ),
        max_leaves=6,
    )


@st.composite
def quantified(draw: st.DrawFn) -> dict[str, Any]:
    form = draw(st.sampled_from(["for_all", "for_any", "for_none"]))
    body: dict[str, Any] = {"in": "items", "assert": draw(expressions(ITEM_PATHS))}
    if form != "for_any":
        body["key"] = draw(st.sampled_from(["{name}", "{port}/{a}", "item"]))
    if draw(st.booleans()):
        body["where"] = draw(expressions(ITEM_PATHS))
    return {form: body}


@st.composite
def rule_pack(draw: st.DrawFn) -> str:
    rules = []
    for index in range(draw(st.integers(1, 4))):
        rule: dict[str, Any] = {
            "id": f"PROP-{index}",
            "title": {"vi": "Thử", "en": "Test"},
            "severity": draw(st.sampled_from(["critical", "high", "medium", "low", "info"])),
            "rationale": {"vi": "Thử", "en": "Test"},
            "remediation": {"vi": "Thử", "en": "Test"},
            "check": draw(expressions(PATHS) | quantified()),
            "message": {"vi": "Lỗi {a}", "en": "Failed {$.host.name}"},
        }
        if draw(st.booleans()):
            rule["applies_to"] = draw(expressions(PATHS))
        rules.append(rule)
    pack = {"pack": {"id": "prop", "version": "1.0.0", "title": {"vi": "T", "en": "T"}}}
    return yaml.safe_dump({**pack, "rules": rules}, allow_unicode=True)


@SETTINGS
@given(text=rule_pack(), facts=FACTS)
def test_engine_never_crashes_and_is_deterministic(
    text: str, facts: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    pack, problems = load_pack_text(text, SOURCE)
    note(text)
    assert pack is not None, [str(p) for p in problems]  # the generator makes valid rules
    ruleset = RuleSet(packs=(pack,))
    original = copy.deepcopy(facts)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="canhgac.rules.engine"):
        first = evaluate(ruleset, facts)
    assert not caplog.records, [r.getMessage() for r in caplog.records]  # no engine bug
    assert facts == original  # read only
    assert evaluate(ruleset, facts) == first
    assert evaluate(ruleset, copy.deepcopy(facts)) == first
    assert [r.rule_id for r in first] == [r.id for r in ruleset.rules]
    for result in first:
        assert not any(e.startswith("internal error") for e in result.errors)
        if result.status is Status.FAIL:
            assert result.items and not result.errors
        elif result.status is Status.PASS:
            assert not result.items and not result.errors
        elif result.status is Status.ERROR:
            assert result.errors
        else:
            assert result.status is Status.NOT_APPLICABLE and not result.items


def _located(problems: list[Any], source: str) -> None:
    assert problems
    for problem in problems:
        assert problem.file == source and problem.line >= 1 and problem.column >= 1
        assert problem.message.strip()


def _check_file(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    try:
        load_rules([path])
    except RuleLoadError as e:
        _located(e.problems, str(path))
    pack, problems = load_pack_text(text, SOURCE)
    if pack is None:
        _located(problems, SOURCE)
    else:
        assert not problems


RANDOM_YAML = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["pack", "rules", "id", "check", "path", "op", "value", "all", "x"])
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@SETTINGS
@given(data=RANDOM_YAML)
def test_loader_answers_random_structures_with_located_problems(data: Any, tmp_path: Path) -> None:
    _check_file(tmp_path / "random.yaml", yaml.safe_dump(data, allow_unicode=True))


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}\"'&*!|>#%@`\n \t\\é")), max_size=80))
def test_loader_answers_random_text_with_located_problems(text: str, tmp_path: Path) -> None:
    _check_file(tmp_path / "text.yaml", text)


@SETTINGS
@given(text=rule_pack(), data=st.data())
def test_loader_answers_mutated_valid_packs(text: str, data: st.DataObject, tmp_path: Path) -> None:
    """A valid pack with one node replaced by a random value: a pack or located problems."""
    document = yaml.safe_load(text)
    node: Any = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(RANDOM_YAML)
        break
    _check_file(tmp_path / "mutated.yaml", yaml.safe_dump(document, allow_unicode=True))


@pytest.mark.parametrize(
    "text",
    ["pack: null\nrules: []\n", "pack: {id: a, version: '1', title: {vi: a, en: a}}\nrules:\n"],
)
def test_null_header_or_rules_is_a_problem_not_silence(text: str) -> None:
    """Found by the mutation property: `pack: null` gave no pack and no problem."""
    pack, problems = load_pack_text(text, SOURCE)
    assert pack is None
    assert any("must be a" in p.message for p in problems)
