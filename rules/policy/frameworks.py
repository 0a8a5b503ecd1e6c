"""Compliance frameworks as data: requirements, their groups, and the rules that evidence them.

A national standard, an international one or a province's own regulation is a YAML
file in `rules/frameworks/` (format in docs/rules.md), loaded and checked here with
the same located, all-problems-at-once reporting as rule packs.

Security levels: a requirement may name the security levels (cấp độ 1-5 of Decree
85/2016 and its successors) it belongs to, `level: 3` or `levels: [3, 4, 5]`; without
either it applies at every level. A host's level is data in the collector's scopes: a
host group with id `security-level-<N>` (see `security_level`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rules.errors import Problem, RuleLoadError
from rules.language.loader import read_yaml_files
from rules.language.model import Localized
from rules.language.parsing import LocatedParser
from rules.language.yamlsource import LocatedList, LocatedMap, Position
from rules.policy.scopes import Scopes, Subject

FRAMEWORK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CONFIDENCE = ("verified", "unverified")
# The five security levels (cấp độ) a Vietnamese information system is approved at.
SECURITY_LEVELS = range(1, 6)
# Host groups that carry a system's level in the scopes files: security-level-1 ... -5.
SECURITY_LEVEL_GROUP = "security-level-{}"
LEVEL_TEXT = f"an integer from {SECURITY_LEVELS[0]} to {SECURITY_LEVELS[-1]}"


def builtin_frameworks_dir() -> Path:
    return Path(str(resources.files("rules").joinpath("frameworks")))


@dataclass(frozen=True)
class RequirementGroup:
    id: str
    title: Localized


@dataclass(frozen=True)
class Requirement:
    id: str
    group: str
    title: Localized
    rules: tuple[str, ...]
    confidence: str
    level: int | None = None
    source: str = ""
    # Every level the requirement belongs to; empty = every level. `level` stays the
    # single level when there is exactly one, for readers written before `levels`.
    levels: tuple[int, ...] = ()

    def applies_at(self, level: int | None) -> bool:
        """Whether a host of security `level` is judged by this requirement.

        An unknown level (None) keeps every requirement: dropping some would make a
        host whose level nobody declared look better, never worse.
        """
        return level is None or not self.levels or level in self.levels


@dataclass(frozen=True)
class Framework:
    id: str
    version: str
    title: Localized
    reference: str
    confidence: str
    groups: tuple[RequirementGroup, ...]
    requirements: tuple[Requirement, ...]
    source: str = ""

    def requirements_for(self, rule_id: str) -> list[Requirement]:
        return [r for r in self.requirements if rule_id in r.rules]

    def requirements_at(self, level: int | None) -> tuple[Requirement, ...]:
        """The requirements a host of security `level` is judged by (None: all)."""
        return tuple(r for r in self.requirements if r.applies_at(level))


def security_level(scopes: Scopes, subject: Subject) -> int | None:
    """A host's security level from the scopes' `security-level-<N>` host groups.

    A host in several (it serves systems of different levels) takes the highest; a
    host in none has no known level (None).
    """
    found = [
        level
        for level in SECURITY_LEVELS
        if (group := scopes.groups.get(SECURITY_LEVEL_GROUP.format(level))) is not None
        and group.contains(subject)
    ]
    return max(found) if found else None


def declares_levels(scopes: Scopes) -> bool:
    """Whether any host can have a known level (a `security-level-<N>` group exists):
    without one, every requirement applies to every host and nothing needs reading."""
    return any(SECURITY_LEVEL_GROUP.format(level) in scopes.groups for level in SECURITY_LEVELS)


class _FrameworkParser(LocatedParser):
    def framework(self, data: Any) -> Framework | None:
        if not isinstance(data, LocatedMap):
            self.problem(
                Position(1, 1), "a framework file is a mapping with framework, groups, requirements"
            )
            return None
        self.unknown_keys(data, {"framework", "groups", "requirements"}, "framework file")
        header = self.required(data, "framework", "framework file")
        if not isinstance(header, LocatedMap):
            if header is not None:
                self.problem(data.value_at("framework"), "'framework' must be a mapping")
            return None
        self.unknown_keys(header, {"id", "version", "title", "source", "confidence"}, "framework")
        framework_id = self.string(header, "id", "framework", pattern=FRAMEWORK_ID)
        version = self.string(header, "version", "framework")
        title = self.localized(header, "title", "framework")
        reference = self.string(header, "source", "framework")
        confidence = self.confidence(header, "verified")
        groups = self.groups(data)
        requirements = self.requirements(data, {g.id for g in groups}, confidence)
        if self.problems:
            return None
        assert framework_id and version and title and reference
        return Framework(
            framework_id,
            version,
            title,
            reference,
            confidence,
            groups,
            requirements,
            self.loc(data.position),
        )

    def confidence(self, node: LocatedMap, default: str) -> str:
        value = node.get("confidence", default)
        if value not in CONFIDENCE:
            self.problem(
                node.value_at("confidence"), f"confidence must be one of {', '.join(CONFIDENCE)}"
            )
            return default
        return str(value)

    def groups(self, data: LocatedMap) -> tuple[RequirementGroup, ...]:
        nodes = data.get("groups", [])
        if not isinstance(nodes, LocatedList):
            self.problem(data.value_at("groups"), "'groups' must be a list")
            return ()
        groups: list[RequirementGroup] = []
        for index, node in enumerate(nodes):
            if not isinstance(node, LocatedMap):
                self.problem(nodes.item_at(index), "a group is a mapping with id and title")
                continue
            self.unknown_keys(node, {"id", "title"}, "group")
            group_id = self.string(node, "id", "group")
            title = self.localized(node, "title", "group")
            if group_id and title:
                groups.append(RequirementGroup(group_id, title))
        return tuple(groups)

    def requirements(
        self, data: LocatedMap, group_ids: set[str], default_confidence: str
    ) -> tuple[Requirement, ...]:
        nodes = self.required(data, "requirements", "framework file")
        if not isinstance(nodes, LocatedList):
            if nodes is not None:
                self.problem(data.value_at("requirements"), "'requirements' must be a list")
            return ()
        seen: set[str] = set()
        requirements: list[Requirement] = []
        for index, node in enumerate(nodes):
            requirement = self.requirement(
                node, nodes.item_at(index), group_ids, default_confidence
            )
            if requirement is None:
                continue
            if requirement.id in seen:
                self.problem(nodes.item_at(index), f"duplicate requirement id '{requirement.id}'")
            seen.add(requirement.id)
            requirements.append(requirement)
        return tuple(requirements)

    def requirement(
        self, node: Any, position: Position, group_ids: set[str], default_confidence: str
    ) -> Requirement | None:
        if not isinstance(node, LocatedMap):
            self.problem(position, "a requirement is a mapping with id, group, title, rules")
            return None
        self.unknown_keys(
            node, {"id", "group", "title", "level", "levels", "confidence", "rules"}, "requirement"
        )
        raw_id = node.get("id")
        requirement_id = str(raw_id) if isinstance(raw_id, str | int | float) else None
        if not requirement_id:
            self.problem(node.position, "requirement is missing required field 'id'")
        group = self.string(node, "group", "requirement")
        if group is not None and group not in group_ids:
            self.problem(
                node.value_at("group"), f"unknown group '{group}' (declare it under groups)"
            )
        title = self.localized(node, "title", "requirement")
        levels = self.levels(node)
        level = levels[0] if len(levels) == 1 else None
        rules = node.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            self.problem(node.value_at("rules"), "'rules' must be a list of rule ids")
            rules = []
        confidence = self.confidence(node, default_confidence)
        if not (requirement_id and group and title):
            return None
        return Requirement(
            requirement_id,
            group,
            title,
            tuple(rules),
            confidence,
            level,
            self.loc(node.position),
            levels,
        )

    def levels(self, node: LocatedMap) -> tuple[int, ...]:
        """`level: N` or `levels: [N, ...]` (not both), each a security level 1-5."""
        if "level" in node and "levels" in node:
            self.problem(node.key_at("levels"), "give either 'level' or 'levels', not both")
            return ()
        if "levels" not in node:
            level = node.get("level")
            if level is None:
                return ()
            if not self.is_level(level):
                self.problem(node.value_at("level"), f"'level' must be {LEVEL_TEXT} or null")
                return ()
            return (level,)
        values = node["levels"]
        if not isinstance(values, LocatedList) or not values:
            self.problem(node.value_at("levels"), "'levels' must be a non-empty list of levels")
            return ()
        levels: list[int] = []
        for index, value in enumerate(values):
            if not self.is_level(value):
                self.problem(values.item_at(index), f"a level must be {LEVEL_TEXT}")
            elif value in levels:
                self.problem(values.item_at(index), f"level {value} is listed twice")
            else:
                levels.append(value)
        return tuple(sorted(levels))

    @staticmethod
    def is_level(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value in SECURITY_LEVELS


def load_frameworks(paths: Iterable[Path | str]) -> tuple[Framework, ...]:
    """Every framework under `paths`; raise RuleLoadError listing every problem."""
    frameworks: list[Framework] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for file, data in read_yaml_files(paths, "framework", problems):
        parser = _FrameworkParser(str(file))
        framework = parser.framework(data)
        problems.extend(parser.problems)
        if framework is None:
            continue
        if framework.id in seen:
            problems.append(
                Problem(
                    str(file),
                    1,
                    1,
                    f"duplicate framework id '{framework.id}' (also {seen[framework.id]})",
                )
            )
        seen.setdefault(framework.id, str(file))
        frameworks.append(framework)
    if problems:
        raise RuleLoadError(problems)
    return tuple(frameworks)
