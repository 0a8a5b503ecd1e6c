"""Rule fixtures: facts fragments with the status and item keys a rule must produce.

`rules test` loads them (`rules/packs/tests/*.yaml` for the built-in packs), runs
each case through the real engine and reports every disagreement; `rules lint`
requires a `pass` and a `fail` case for every rule.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.engine import evaluate_rule
from rules.errors import Problem, RuleLoadError
from rules.facts import SCHEMA_ID
from rules.language.loader import builtin_packs_dir, read_yaml_files
from rules.language.model import RuleSet
from rules.language.parsing import LocatedParser, plain_data
from rules.language.yamlsource import LocatedList, LocatedMap, Position
from rules.results import RuleResult, Status

CASE_KEYS = {"rule", "name", "facts", "params", "expect"}


def builtin_fixtures_dir() -> Path:
    return builtin_packs_dir() / "tests"


def envelope() -> dict[str, Any]:
    """The smallest valid facts document; a case's fragment is merged onto it."""
    return {
        "schema": SCHEMA_ID,
        "report_id": "00000000-0000-4000-8000-000000000000",
        "agent_id": "fixture",
        "seq": 1,
        "collected_at": "2026-01-01T00:00:00Z",
        "agent_version": "fixture",
        "errors": [],
    }


@dataclass(frozen=True)
class FixtureCase:
    rule_id: str
    name: str
    facts: Mapping[str, Any]
    params: Mapping[str, Any]
    status: Status
    items: tuple[str, ...] | None  # None: item keys not checked
    source: str  # file:line:col of the case

    def document(self) -> dict[str, Any]:
        document = envelope()
        document.update(copy.deepcopy(dict(self.facts)))
        return document


@dataclass(frozen=True)
class CaseOutcome:
    case: FixtureCase
    result: RuleResult | None
    problem: str | None  # None when the case passed

    @property
    def ok(self) -> bool:
        return self.problem is None


class _FixtureParser(LocatedParser):
    def cases(self, data: Any) -> list[FixtureCase]:
        if not isinstance(data, LocatedMap):
            self.problem(Position(1, 1), "a fixtures file is a mapping with 'pack' and 'cases'")
            return []
        self.unknown_keys(data, {"pack", "cases"}, "fixtures file")
        cases = self.required(data, "cases", "fixtures file")
        if not isinstance(cases, LocatedList):
            if cases is not None:
                self.problem(data.value_at("cases"), "'cases' must be a list")
            return []
        parsed = [self.case(node, cases.item_at(i)) for i, node in enumerate(cases)]
        return [case for case in parsed if case is not None]

    def case(self, node: Any, position: Position) -> FixtureCase | None:
        if not isinstance(node, LocatedMap):
            self.problem(position, "a case must be a mapping with rule, name, facts, expect")
            return None
        before = len(self.problems)
        self.unknown_keys(node, CASE_KEYS, "case")
        rule_id = self.string(node, "rule", "case")
        name = self.string(node, "name", "case")
        facts = self.required(node, "facts", "case")
        # `facts:` left empty is None, not a fragment: named here, not a crash later
        if "facts" in node and not isinstance(facts, LocatedMap):
            self.problem(node.value_at("facts"), "'facts' must be a mapping (a facts fragment)")
        params = node.get("params", {})
        if not isinstance(params, dict):
            self.problem(node.value_at("params"), "'params' must be a mapping")
        status, items = self.expectation(node)
        if len(self.problems) > before or status is None:
            return None
        assert rule_id is not None and name is not None
        return FixtureCase(
            rule_id,
            name,
            plain_data(facts),
            plain_data(params),
            status,
            items,
            self.loc(node.position),
        )

    def expectation(self, node: LocatedMap) -> tuple[Status | None, tuple[str, ...] | None]:
        expect = self.required(node, "expect", "case")
        if not isinstance(expect, LocatedMap):
            if expect is not None:
                self.problem(node.value_at("expect"), "'expect' must be {status, items}")
            return None, None
        self.unknown_keys(expect, {"status", "items"}, "expect")
        try:
            status = Status(str(expect.get("status")))
        except ValueError:
            allowed = " | ".join(s.value for s in Status)
            self.problem(expect.value_at("status"), f"expected status must be one of {allowed}")
            return None, None
        items = expect.get("items")
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, str) for i in items)
        ):
            self.problem(expect.value_at("items"), "'items' must be a list of item keys")
            return None, None
        return status, tuple(items) if items is not None else None


def load_fixtures(paths: Iterable[Path | str]) -> list[FixtureCase]:
    """Every case of every fixtures file; raise RuleLoadError listing every problem."""
    cases: list[FixtureCase] = []
    problems: list[Problem] = []
    for file, data in read_yaml_files(paths, "fixtures", problems):
        parser = _FixtureParser(str(file))
        cases.extend(parser.cases(data))
        problems.extend(parser.problems)
    if problems:
        raise RuleLoadError(problems)
    return cases


def _judge(case: FixtureCase, result: RuleResult) -> str | None:
    if result.status is not case.status:
        detail = f"; errors: {'; '.join(result.errors)}" if result.errors else ""
        return f"expected {case.status.value}, got {result.status.value}{detail}"
    keys = tuple(item.key for item in result.items)
    if case.items is not None and keys != case.items:
        return f"expected items {list(case.items)}, got {list(keys)}"
    return None


def run_fixtures(ruleset: RuleSet, cases: Sequence[FixtureCase]) -> list[CaseOutcome]:
    """Run each case through the engine; an unknown rule id is a failed case."""
    outcomes: list[CaseOutcome] = []
    for case in cases:
        rule = ruleset.get(case.rule_id)
        if rule is None:
            outcomes.append(CaseOutcome(case, None, f"unknown rule '{case.rule_id}'"))
            continue
        result = evaluate_rule(rule, case.document(), case.params)
        outcomes.append(CaseOutcome(case, result, _judge(case, result)))
    return outcomes
