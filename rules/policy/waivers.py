"""Waivers: exceptions to a rule for some hosts, justified, approved and expiring.

A waiver covers failures only (an `error` stays an error: nobody can waive what was
not seen). While active it turns a failing rule, or some of its items, into
`waived`, which the score excludes. Once expired it stops applying and is itself
reported, so an exception cannot quietly become permanent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rules.errors import Problem, RuleLoadError
from rules.language.loader import read_yaml_files
from rules.language.yamlsource import LocatedList, LocatedMap, Position
from rules.policy.scopes import HostGroup, Selector, SelectorParser, Subject
from rules.results import RuleResult, Status

WAIVER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
WAIVER_KEYS = {"id", "rule", "selector", "item", "justification", "expires", "approved_by"}


@dataclass(frozen=True)
class Waiver:
    id: str
    rule_id: str
    selector: Selector
    justification: str
    expires: date
    approved_by: str | None = None
    item: str | None = None
    source: str = ""

    def active_on(self, today: date) -> bool:
        return today <= self.expires

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "selector": self.selector.to_dict(),
            "item": self.item,
            "justification": self.justification,
            "expires": self.expires.isoformat(),
            "approved_by": self.approved_by,
        }


class _WaiverParser(SelectorParser):
    def waivers(self, data: Any) -> list[Waiver]:
        if not isinstance(data, LocatedMap):
            self.problem(Position(1, 1), "a waivers file is a mapping with 'waivers'")
            return []
        self.unknown_keys(data, {"waivers"}, "waivers file")
        nodes = self.required(data, "waivers", "waivers file")
        if not isinstance(nodes, LocatedList):
            if nodes is not None:
                self.problem(data.value_at("waivers"), "'waivers' must be a list")
            return []
        parsed = [self.waiver(node, nodes.item_at(i)) for i, node in enumerate(nodes)]
        return [w for w in parsed if w is not None]

    def waiver(self, node: Any, position: Position) -> Waiver | None:
        if not isinstance(node, LocatedMap):
            self.problem(
                position, "a waiver is a mapping (id, rule, selector, justification, expires)"
            )
            return None
        before = len(self.problems)
        self.unknown_keys(node, WAIVER_KEYS, "waiver")
        waiver_id = self.string(node, "id", "waiver", pattern=WAIVER_ID)
        rule_id = self.string(node, "rule", "waiver")
        selector = (
            self.selector(node["selector"], node.value_at("selector"))
            if "selector" in node
            else self.required(node, "selector", "waiver")
        )
        justification = self.string(node, "justification", "waiver")
        expires = self.expiry(node)
        approved_by = self.string(node, "approved_by", "waiver", required=False)
        item = self.string(node, "item", "waiver", required=False)
        if len(self.problems) > before:
            return None
        assert (
            waiver_id and rule_id and isinstance(selector, Selector) and justification and expires
        )
        return Waiver(
            waiver_id,
            rule_id,
            selector,
            justification,
            expires,
            approved_by,
            item,
            self.loc(node.position),
        )

    def expiry(self, node: LocatedMap) -> date | None:
        raw = self.required(node, "expires", "waiver")
        if raw is None:
            return None
        try:
            return date.fromisoformat(str(raw))
        except ValueError:
            self.problem(
                node.value_at("expires"), f"'expires' must be a date YYYY-MM-DD, got {raw!r}"
            )
            return None


def load_waivers(paths: Iterable[Path | str]) -> tuple[Waiver, ...]:
    waivers: list[Waiver] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for file, data in read_yaml_files(paths, "waivers", problems):
        parser = _WaiverParser(str(file))
        file_waivers = parser.waivers(data)
        problems.extend(parser.problems)
        for waiver in file_waivers:
            if waiver.id in seen:
                message = f"duplicate waiver id '{waiver.id}' (first at {seen[waiver.id]})"
                problems.append(Problem.at(waiver.source, message))
            seen.setdefault(waiver.id, waiver.source)
            waivers.append(waiver)
    if problems:
        raise RuleLoadError(problems)
    return tuple(waivers)


def _waive(result: RuleResult, waivers: Sequence[Waiver]) -> RuleResult:
    whole = next((w for w in waivers if w.item is None), None)
    if whole is not None:
        items = tuple(dataclasses.replace(i, waiver=whole.id) for i in result.items)
        return dataclasses.replace(
            result, status=Status.WAIVED, items=items, waiver=whole.to_dict()
        )
    by_item = {w.item: w for w in waivers}
    items = tuple(
        dataclasses.replace(i, waiver=by_item[i.key].id) if i.key in by_item else i
        for i in result.items
    )
    if items and all(i.waiver is not None for i in items):
        first = by_item[items[0].key]
        return dataclasses.replace(
            result, status=Status.WAIVED, items=items, waiver=first.to_dict()
        )
    return dataclasses.replace(result, items=items)


def apply_waivers(
    results: Sequence[RuleResult],
    waivers: Sequence[Waiver],
    subject: Subject,
    groups: Mapping[str, HostGroup],
    today: date,
) -> tuple[list[RuleResult], list[dict[str, Any]]]:
    """Waive covered failures; return (results, expired waivers that match this host)."""
    mine = [w for w in waivers if w.selector.matches(subject, groups)]
    active: dict[str, list[Waiver]] = {}
    for waiver in mine:
        if waiver.active_on(today):
            active.setdefault(waiver.rule_id, []).append(waiver)
    judged = [
        _waive(r, active[r.rule_id]) if r.status is Status.FAIL and r.rule_id in active else r
        for r in results
    ]
    expired = [w.to_dict() for w in mine if not w.active_on(today)]
    return judged, expired
