"""Large domains stored in parts, so one changed item does not store the whole list.

A host's `packages` domain is a list of about a thousand items of which one changes
now and then; stored as one blob, every change stored the whole list again. Here
the list (`PARTED`: packages, pending updates, certificates, listeners; lists of
`PART_FROM` items or more) is cut into consecutive parts at content-defined
boundaries: a part ends after an item whose key (its `name` or `location`, else its
canonical JSON) hashes (CRC-32) to 0 modulo `PART_EVERY`, or when
it reaches `PART_MAX` items. A package whose version changes keeps its name, so no
boundary moves and exactly one part changes; a package added or removed changes
one part (two when it is itself a boundary). Parts are content-addressed blobs of
their own (`part_domain`), shared between the host's versions of the domain; the
domain's blob (its "head") keeps the value with the list emptied and the ordered
ids of its parts. Concatenating the parts gives back the list exactly, in its
order: nothing is sorted or assumed about the agent's order.

Pure functions: `split_parts` cuts a value, `join_parts` puts it back together.
`server.storage.fact_store` stores them, `server.storage.fact_load` reads them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# domain -> the keys leading to its list (empty: the domain is the list). Every
# reader of blobs goes through `fact_load`, which joins the parts back. An entry is
# never changed or removed (stored heads rely on it): a new one is also added to the
# table of revision 0007's downgrade (a test checks).
PARTED: dict[str, tuple[str, ...]] = {
    "packages": ("items",),
    "updates": ("pending",),
    "certificates": (),
    "listening": (),
}
PART_EVERY = 32  # mean items per part: 47 parts and a 1-2 KB part per change at 1,500
PART_MAX = 4 * PART_EVERY  # a part cut here when no key ends it (one name repeated)
PART_FROM = 2 * PART_EVERY  # shorter lists are stored whole: parts would not pay


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def part_domain(domain: str) -> str:
    """The `facts_blobs.domain` of a domain's parts (never a domain's own name)."""
    return f"{domain}/{'.'.join(PARTED[domain])}"


@dataclass(frozen=True)
class Part:
    text: str  # canonical JSON of a list of consecutive items
    digest: str  # its sha256


@dataclass(frozen=True)
class Parted:
    head: str  # canonical JSON of the value with the list emptied
    parts: tuple[Part, ...]


def _cut(items: list[Any]) -> list[list[Any]]:
    # One pass with slices: this runs on every new packages list (1,500 items).
    parts: list[list[Any]] = []
    start = 0
    crc32 = zlib.crc32
    for index, item in enumerate(items):
        name = (item.get("name") or item.get("location")) if type(item) is dict else None
        key = name if type(name) is str else canonical(item)
        if crc32(key.encode()) % PART_EVERY == 0 or index + 1 - start >= PART_MAX:
            parts.append(items[start : index + 1])
            start = index + 1
    if start < len(items):
        parts.append(items[start:])
    return parts


def split_parts(domain: str, value: Any) -> Parted | None:
    """`value` (stripped of derived fields) cut into a head and parts; None when the
    domain is not parted, its list is not where `PARTED` says or is shorter than
    `PART_FROM` (stored whole)."""
    path = PARTED.get(domain)
    if path is None:
        return None
    if not path:
        if not isinstance(value, list) or len(value) < PART_FROM:
            return None
        return Parted("[]", _parts(value))
    if not isinstance(value, dict):
        return None
    head: dict[str, Any] = dict(value)
    node = head
    for step in path[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            return None
        node[step] = node = dict(child)
    items = node.get(path[-1])
    if not isinstance(items, list) or len(items) < PART_FROM:
        return None
    node[path[-1]] = []
    return Parted(canonical(head), _parts(items))


def _parts(items: list[Any]) -> tuple[Part, ...]:
    parts = []
    for chunk in _cut(items):
        text = canonical(chunk)
        parts.append(Part(text, hashlib.sha256(text.encode()).hexdigest()))
    return tuple(parts)


def join_parts(domain: str, head: Any, parts: Sequence[Sequence[Any]]) -> Any:
    """The value `split_parts` cut: `head` (parsed, changed in place) with its list
    set to the parts' items, concatenated in order."""
    items = [item for part in parts for item in part]
    path = PARTED[domain]
    if not path:
        return items
    node = head
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = items
    return head
