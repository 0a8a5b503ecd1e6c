"""Scopes: who a waiver or a parameter override applies to.

A `Selector` names an agency, a host (glob) and/or a host group; host groups are
data too (`groups:` in a scopes file). Parameter overrides (`params:`) let one agency
or group use another threshold, for example a longer certificate window. The most
specific matching override wins: host, then group, then agency; among equals the
later one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.errors import Problem, RuleLoadError
from rules.language.loader import read_yaml_files
from rules.language.model import Localized
from rules.language.parsing import LocatedParser, plain_data
from rules.language.yamlsource import LocatedList, LocatedMap, Position

SELECTOR_KEYS = {"agency", "host", "group"}


@dataclass(frozen=True)
class Subject:
    """The host being judged, as the collector knows it."""

    agency: str
    hostname: str
    agent_id: str = ""


@dataclass(frozen=True)
class Selector:
    agency: str | None = None
    host: str | None = None  # fnmatch glob over the hostname (or exact agent id)
    group: str | None = None

    @property
    def specificity(self) -> int:
        return 3 if self.host else 2 if self.group else 1 if self.agency else 0

    def matches(self, subject: Subject, groups: Mapping[str, HostGroup]) -> bool:
        if self.agency is not None and self.agency != subject.agency:
            return False
        if self.host is not None and not (
            fnmatch.fnmatchcase(subject.hostname, self.host) or self.host == subject.agent_id
        ):
            return False
        if self.group is not None:
            group = groups.get(self.group)
            if group is None or not group.contains(subject):
                return False
        return True

    def to_dict(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("agency", self.agency), ("host", self.host), ("group", self.group))
            if v
        }


@dataclass(frozen=True)
class HostGroup:
    id: str
    title: Localized | None
    members: tuple[Selector, ...]

    def contains(self, subject: Subject) -> bool:
        # members never name groups (no recursion), so an empty mapping suffices
        return any(member.matches(subject, {}) for member in self.members)


@dataclass(frozen=True)
class ParamOverride:
    selector: Selector
    rule_id: str
    params: Mapping[str, Any]
    source: str = ""


@dataclass(frozen=True)
class Scopes:
    groups: Mapping[str, HostGroup] = field(default_factory=dict)
    overrides: tuple[ParamOverride, ...] = ()

    def params_for(self, subject: Subject) -> dict[str, dict[str, Any]]:
        """rule id -> parameter overrides for this subject (most specific wins)."""
        matching = [o for o in self.overrides if o.selector.matches(subject, self.groups)]
        # stable sort: among equally specific overrides, file order (later wins) is kept
        matching.sort(key=lambda o: o.selector.specificity)
        merged: dict[str, dict[str, Any]] = {}
        for override in matching:
            merged.setdefault(override.rule_id, {}).update(override.params)
        return merged


class SelectorParser(LocatedParser):
    """Selectors are shared by scopes and waivers files."""

    def selector(
        self, node: Any, position: Position, *, allow_group: bool = True
    ) -> Selector | None:
        if not isinstance(node, LocatedMap) or not node:
            self.problem(position, "a selector is a mapping with agency, host and/or group")
            return None
        allowed = SELECTOR_KEYS if allow_group else SELECTOR_KEYS - {"group"}
        self.unknown_keys(node, allowed, "selector")
        values = {key: node.get(key) for key in allowed}
        for key, value in values.items():
            if value is not None and (not isinstance(value, str) or not value):
                self.problem(node.value_at(key), f"selector '{key}' must be a non-empty string")
                return None
        return Selector(values.get("agency"), values.get("host"), values.get("group"))


class _ScopesParser(SelectorParser):
    def scopes(self, data: Any) -> tuple[list[HostGroup], list[ParamOverride]]:
        if not isinstance(data, LocatedMap):
            self.problem(Position(1, 1), "a scopes file is a mapping with groups and/or params")
            return [], []
        self.unknown_keys(data, {"groups", "params"}, "scopes file")
        return self.groups(data), self.overrides(data)

    def groups(self, data: LocatedMap) -> list[HostGroup]:
        if "groups" not in data:  # optional: a file may hold only groups or only params
            return []
        nodes = data["groups"]
        if not isinstance(nodes, LocatedList):
            self.problem(data.value_at("groups"), "'groups' must be a list")
            return []
        groups = []
        for index, node in enumerate(nodes):
            if not isinstance(node, LocatedMap):
                self.problem(nodes.item_at(index), "a group is a mapping with id and members")
                continue
            self.unknown_keys(node, {"id", "title", "members"}, "group")
            group_id = self.string(node, "id", "group")
            title = self.localized(node, "title", "group", required=False)
            members = node.get("members")
            if not isinstance(members, LocatedList) or not members:
                self.problem(
                    node.value_at("members") if "members" in node else node.position,
                    "'members' must be a non-empty list of selectors",
                )
                continue
            selectors = [
                self.selector(m, members.item_at(i), allow_group=False)
                for i, m in enumerate(members)
            ]
            if group_id and all(s is not None for s in selectors):
                groups.append(
                    HostGroup(group_id, title, tuple(s for s in selectors if s is not None))
                )
        return groups

    def overrides(self, data: LocatedMap) -> list[ParamOverride]:
        if "params" not in data:  # optional: a file may hold only groups or only params
            return []
        nodes = data["params"]
        if not isinstance(nodes, LocatedList):
            self.problem(data.value_at("params"), "'params' must be a list")
            return []
        overrides = []
        for index, node in enumerate(nodes):
            if not isinstance(node, LocatedMap):
                self.problem(
                    nodes.item_at(index), "an override is a mapping with selector, rule, params"
                )
                continue
            self.unknown_keys(node, {"selector", "rule", "params"}, "override")
            selector = self.selector(node.get("selector"), node.value_at("selector"))
            rule_id = self.string(node, "rule", "override")
            params = node.get("params")
            if not isinstance(params, LocatedMap) or not params:
                self.problem(
                    node.value_at("params") if "params" in node else node.position,
                    "'params' must be a non-empty mapping of parameter: value",
                )
                continue
            if selector and rule_id:
                overrides.append(
                    ParamOverride(selector, rule_id, plain_data(params), self.loc(node.position))
                )
        return overrides


def load_scopes(paths: Iterable[Path | str]) -> Scopes:
    groups: dict[str, HostGroup] = {}
    overrides: list[ParamOverride] = []
    problems: list[Problem] = []
    for file, data in read_yaml_files(paths, "scopes", problems):
        parser = _ScopesParser(str(file))
        file_groups, file_overrides = parser.scopes(data)
        problems.extend(parser.problems)
        for group in file_groups:
            if group.id in groups:
                problems.append(Problem(str(file), 1, 1, f"duplicate host group '{group.id}'"))
            groups[group.id] = group
        overrides.extend(file_overrides)
    for override in overrides:
        if override.selector.group and override.selector.group not in groups:
            message = f"unknown host group '{override.selector.group}'"
            problems.append(Problem.at(override.source, message))
    if problems:
        raise RuleLoadError(problems)
    return Scopes(groups, tuple(overrides))
