"""Safe YAML loading that remembers where every value came from.

Rule files are written by people, so every problem must point at `file:line:col`.
PyYAML's safe loader forgets positions once it builds Python objects; this loader
keeps them on the containers it builds (`LocatedMap`, `LocatedList`) and records
duplicate keys as problems instead of silently keeping the last one.

The implicit typing is narrowed to the YAML 1.2 core schema: `yes`, `no`, `on`,
`off` stay strings and dates stay strings. Under YAML 1.1, `value: no` in a rule
about `PermitRootLogin no` would silently become the boolean False.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from rules.errors import Problem


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, node: Node) -> Position:
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


class LocatedMap(dict[str, Any]):
    """A mapping that knows its own position and the position of each key and value."""

    position: Position
    key_positions: dict[str, Position]
    value_positions: dict[str, Position]

    def value_at(self, key: str) -> Position:
        return self.value_positions.get(key, self.position)

    def key_at(self, key: str) -> Position:
        return self.key_positions.get(key, self.position)


class LocatedList(list[Any]):
    position: Position
    item_positions: list[Position]

    def item_at(self, index: int) -> Position:
        if 0 <= index < len(self.item_positions):
            return self.item_positions[index]
        return self.position


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core booleans, no timestamps, and located containers."""

    problems: list[Problem]
    source_name: str

    def construct_located_mapping(self, node: MappingNode) -> LocatedMap:
        result = LocatedMap()
        result.position = Position.of(node)
        result.key_positions = {}
        result.value_positions = {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                self._problem(key_node, f"mapping keys must be strings, got {key!r}")
                continue
            if key in result:
                first = result.key_positions[key]
                self._problem(
                    key_node,
                    f"duplicate key '{key}' (first defined at line {first.line})",
                )
                continue
            result[key] = self.construct_object(value_node, deep=True)
            result.key_positions[key] = Position.of(key_node)
            result.value_positions[key] = Position.of(value_node)
        return result

    def construct_located_sequence(self, node: SequenceNode) -> LocatedList:
        result = LocatedList(self.construct_object(child, deep=True) for child in node.value)
        result.position = Position.of(node)
        result.item_positions = [Position.of(child) for child in node.value]
        return result

    def _problem(self, node: Node, message: str) -> None:
        position = Position.of(node)
        self.problems.append(Problem(self.source_name, position.line, position.column, message))


def _core_schema_resolvers() -> dict[Any, Any]:
    resolvers: dict[Any, Any] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [
            (tag, regexp)
            for tag, regexp in entries
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
        ]
        if kept:
            resolvers[first] = kept
    return resolvers


_Loader.yaml_implicit_resolvers = _core_schema_resolvers()
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_located_mapping
)
_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_located_sequence
)


def load_located(text: str, source_name: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; returns (data or None, problems).

    A syntax error is returned as a problem (with the parser's position) rather than
    raised, so callers can report it together with the file's other problems.
    """
    loader = _Loader(text)
    loader.problems = []
    loader.source_name = source_name
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = e.problem or e.context or "invalid YAML"
        return None, [*loader.problems, Problem(source_name, line, column, f"YAML: {reason}")]
    except yaml.YAMLError as e:
        return None, [*loader.problems, Problem(source_name, 1, 1, f"YAML: {e}")]
    finally:
        loader.dispose()
    return data, loader.problems
