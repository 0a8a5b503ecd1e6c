"""Facts derived from a timestamp and the collection time.

Ages (`days_left`, `pending_days`, `uptime_seconds`, ...) are what rules compare,
since the rule language has no date arithmetic; but an age changes with every
collection while the timestamp it comes from does not. So the collector stores facts
without these fields (a certificate that did not change is stored once, not once per
report) and puts them back, from the stored timestamps and the report's
`collected_at`, before evaluating. One table says which fields are derived and how,
so the agent, the collector and the schema cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Seconds = float


def _days_elapsed(seconds: Seconds) -> float:
    return max(0.0, round(seconds / 86400.0, 2))


def _days_left(seconds: Seconds) -> int:
    # negative once expired; floor so "expires in 0 days" means within 24 hours
    return math.floor(-seconds / 86400.0)


def _whole_seconds(seconds: Seconds) -> int:
    return max(0, int(seconds))


@dataclass(frozen=True)
class DerivedField:
    """`field` of each object at `container` is computed from its `source` timestamp."""

    container: str  # dotted path to an object, or to a list of objects when it ends in []
    field: str
    source: str
    compute: Callable[[Seconds], Any]  # from (now - source) in seconds


DERIVED: tuple[DerivedField, ...] = (
    DerivedField("host", "uptime_seconds", "boot_time", _whole_seconds),
    DerivedField("certificates[]", "days_left", "not_after", _days_left),
    DerivedField("updates", "index_age_days", "index_refreshed_at", _days_elapsed),
    DerivedField("updates", "last_upgrade_days", "last_upgrade_at", _days_elapsed),
    DerivedField("updates.pending[]", "pending_days", "first_seen_at", _days_elapsed),
    DerivedField(
        "malware_protection.products[]", "signature_age_days", "signature_updated_at", _days_elapsed
    ),
    DerivedField("file_integrity.aide.last_check", "age_days", "finished_at", _days_elapsed),
)


def parse_timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _objects(facts: Any, container: str) -> Iterator[dict[str, Any]]:
    many = container.endswith("[]")
    node: Any = facts
    for step in container.removesuffix("[]").split("."):
        node = node.get(step) if isinstance(node, dict) else None
    if many:
        yield from (
            (item for item in node or () if isinstance(item, dict))
            if isinstance(node, list)
            else ()
        )
    elif isinstance(node, dict):
        yield node


def strip_derived(facts: Mapping[str, Any]) -> dict[str, Any]:
    """`facts` without the derived fields (what the collector stores), in one pass.

    `facts` is left unchanged. Only the containers on the way to a derived field are
    copied (the host object, the certificate list and its items...); every other
    subtree (the package list, say) is shared with `facts`, not deep-copied: the
    caller must not modify the result in place beyond what it owns.
    """
    stripped = dict(facts)
    copied = {id(stripped)}
    for derived in DERIVED:
        for obj in _owned_objects(stripped, derived.container, copied):
            obj.pop(derived.field, None)
    return stripped


def _owned(parent: dict[str, Any] | list[Any], key: Any, copied: set[int]) -> Any:
    """parent[key], replaced by a shallow copy of itself unless it is one already."""
    child = parent[key]
    if isinstance(child, dict | list) and id(child) not in copied:
        child = dict(child) if isinstance(child, dict) else list(child)
        copied.add(id(child))
        parent[key] = child
    return child


def _owned_objects(
    root: dict[str, Any], container: str, copied: set[int]
) -> Iterator[dict[str, Any]]:
    """Like `_objects`, each object (and every container above it) copied once."""
    node: Any = root
    for step in container.removesuffix("[]").split("."):
        if not isinstance(node, dict) or step not in node:
            return
        node = _owned(node, step, copied)
    if container.endswith("[]"):
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, dict):
                    yield _owned(node, index, copied)
    elif isinstance(node, dict):
        yield node


def strip_domain(name: str, value: Any) -> Any:
    """One domain's value without its derived fields (see `strip_derived`)."""
    return strip_derived({name: value})[name]


def add_derived(facts: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Fill every derived field in place from its source timestamp.

    The field is null when the source is null or unparseable, and left alone when the
    object has no source field at all (a document that never carried it).
    """
    for derived in DERIVED:
        for obj in _objects(facts, derived.container):
            if derived.source not in obj:
                continue
            moment = parse_timestamp(obj.get(derived.source))
            obj[derived.field] = (
                None if moment is None else derived.compute((now - moment).total_seconds())
            )
    return facts
