"""Compliance frameworks as data: requirements, their groups, and the rules that evidence them.

A national standard, an international one or a province's own regulation is a YAML
file in `rules/frameworks/` (format in docs/rules.md), loaded and checked here with
the same located, all-problems-at-once reporting as rule packs.
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

FRAMEWORK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CONFIDENCE = ("verified", "unverified")


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
            node, {"id", "group", "title", "level", "confidence", "rules"}, "requirement"
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
        level = node.get("level")
        if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
            self.problem(node.value_at("level"), "'level' must be an integer or null")
            level = None
        rules = node.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            self.problem(node.value_at("rules"), "'rules' must be a list of rule ids")
            rules = []
        confidence = self.confidence(node, default_confidence)
        if not (requirement_id and group and title):
            return None
        return Requirement(
            requirement_id, group, title, tuple(rules), confidence, level, self.loc(node.position)
        )


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
