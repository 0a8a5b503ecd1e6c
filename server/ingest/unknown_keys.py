"""Keys the facts schema does not define, inside its objects: dropped and counted.

The schema leaves its objects open (no `additionalProperties: false`), so that a
newer agent's additive fields never make an older collector refuse whole reports
and lose them. But what the schema does not define no rule reads, and it must not
cost storage at every report: every object the schema describes by its
`properties` keeps only those keys. Top-level keys are handled the same way by
`payload.validate_facts`.

The pruners are built once per process from the schema (`$ref`, `oneOf` and
`if`/`then`/`else` branches contribute their properties; an object the schema
leaves free-form is kept whole) and run only on the domains that were validated
now: a domain trusted for its bytes was pruned when those bytes were first stored.
An object with no unknown key costs one C-level set comparison.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rules.facts import load_schema

# Paths of dropped keys kept for the log line; the count is always whole.
SAMPLE_PATHS = 10
_NAME_CHARS = 64  # a dropped key's name is the agent's text: cut for the log

Path = tuple[Any, ...]  # (parent path, key or index), () at the root: built only on a drop


@dataclass
class _Node:
    """What to keep of one value: `known` keys of an object (None: free-form, all
    kept), the nodes of its keys, and the node of a list's items."""

    known: frozenset[str] | None = None
    children: tuple[tuple[str, _Node], ...] = ()
    items: _Node | None = None

    def prune(self, value: Any, path: Path, sample: list[str]) -> int:
        dropped = 0
        if type(value) is dict:
            known = self.known
            if known is not None and not value.keys() <= known:
                extra = [key for key in value if key not in known]
                for key in extra:
                    del value[key]
                dropped += len(extra)
                for key in extra[: max(0, SAMPLE_PATHS - len(sample))]:
                    sample.append(_dotted((path, key[:_NAME_CHARS])))
            for key, child in self.children:
                nested = value.get(key)
                if nested is not None:
                    dropped += child.prune(nested, (path, key), sample)
        elif type(value) is list and self.items is not None:
            items = self.items
            for index, item in enumerate(value):
                dropped += items.prune(item, (path, index), sample)
        return dropped


@dataclass
class Dropped:
    """How many keys one document lost, and where the first ones were."""

    count: int = 0
    paths: list[str] = field(default_factory=list)


def prune_unknown_keys(data: dict[str, Any], skip: Collection[str] = ()) -> Dropped:
    """Drop, in place, every key the schema does not define inside `data`'s known
    top-level values, except those named in `skip` (domains trusted for their bytes)."""
    nodes = _top_nodes()
    dropped = Dropped()
    for name, value in data.items():
        node = nodes.get(name)
        if node is not None and name not in skip:
            dropped.count += node.prune(value, ((), name), dropped.paths)
    return dropped


def _dotted(path: Path) -> str:
    parts: list[str] = []
    while path:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


@cache
def _top_nodes() -> dict[str, _Node]:
    schema = load_schema()
    defs: Mapping[str, Any] = schema.get("$defs", {})
    nodes: dict[str, _Node] = {}
    for name, sub in schema["properties"].items():
        node = _compile([sub], defs, depth=0)
        if node is not None:
            nodes[name] = node
    return nodes


def _branches(schemas: Iterable[Mapping[str, Any]], defs: Mapping[str, Any]) -> list[Any]:
    """Every alternative a value may match: references followed, oneOf/anyOf/allOf
    and if/then/else flattened."""
    out: list[Any] = []
    stack = list(schemas)
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            stack.append(defs[ref.removeprefix("#/$defs/")])
        for key in ("oneOf", "anyOf", "allOf"):
            stack.extend(node.get(key, ()))
        stack.extend(node[key] for key in ("then", "else") if key in node)
        out.append(node)
    return out


def _compile(schemas: list[Any], defs: Mapping[str, Any], *, depth: int) -> _Node | None:
    if depth > 32:  # the schema has no cycles; a future one must not recurse forever
        return None
    branches = _branches(schemas, defs)
    properties: dict[str, list[Any]] = {}
    closed = False
    free_form = False
    items: list[Any] = []
    for branch in branches:
        if "properties" in branch:
            closed = True
            for key, sub in branch["properties"].items():
                properties.setdefault(key, []).append(sub)
        elif _may_be_object(branch) and "$ref" not in branch:
            free_form = True  # an object the schema does not describe: kept whole
        if "items" in branch:
            items.append(branch["items"])
    children = tuple(
        (key, child)
        for key, subs in sorted(properties.items())
        if (child := _compile(subs, defs, depth=depth + 1)) is not None
    )
    item_node = _compile(items, defs, depth=depth + 1) if items else None
    known = frozenset(properties) if closed and not free_form else None
    if known is None and not children and item_node is None:
        return None
    return _Node(known, children, item_node)


def _may_be_object(branch: Mapping[str, Any]) -> bool:
    kind = branch.get("type")
    if isinstance(kind, list):
        return "object" in kind
    return kind == "object"
