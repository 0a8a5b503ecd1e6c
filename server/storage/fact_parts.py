"""Large domains stored in parts, so one changed item does not store the whole list.

A host's `packages` domain is a list of about a thousand items of which one changes
now and then; stored as one blob, every change stored the whole list again. Here
the list (`PARTED`: the domain and the path of its list) is cut into consecutive
parts at content-defined boundaries: a part ends after an item whose key (its
`name`, else its canonical JSON) hashes (CRC-32) to 0 modulo `PART_EVERY`, or when
it reaches `PART_MAX` items. A package whose version changes keeps its name, so no
boundary moves and exactly one part changes; a package added or removed changes
one part (two when it is itself a boundary). Parts are content-addressed blobs of
their own (`part_domain`), shared between the host's versions of the domain; the
domain's blob (its "head") keeps the value with the list emptied and the ordered
ids of its parts. Concatenating the parts gives back the list exactly, in its
order: nothing is sorted or assumed about the agent's order.

Pure functions: `split_parts` cuts a value, `join_parts` puts it back together.
`server.storage.fact_store` stores and loads them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# domain -> the keys leading to its list. Only domains read through fact_store are
# parted: readers that select a blob's content themselves (the certificates metrics,
# the audit's updates and certificates) would see a head without its list.
PARTED: dict[str, tuple[str, ...]] = {"packages": ("items",)}
PART_EVERY = 32  # mean items per part: 47 parts and a 1-2 KB part per change at 1,500
PART_MAX = 4 * PART_EVERY  # a part cut here when no key ends it (one name repeated)


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
        name = item.get("name") if type(item) is dict else None
        key = name if type(name) is str else canonical(item)
        if crc32(key.encode()) % PART_EVERY == 0 or index + 1 - start >= PART_MAX:
            parts.append(items[start : index + 1])
            start = index + 1
    if start < len(items):
        parts.append(items[start:])
    return parts


def split_parts(domain: str, value: Any) -> Parted | None:
    """`value` (stripped of derived fields) cut into a head and parts; None when the
    domain is not parted or its list is not where `PARTED` says (stored whole)."""
    path = PARTED.get(domain)
    if path is None or not isinstance(value, dict):
        return None
    head: dict[str, Any] = dict(value)
    node = head
    for step in path[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            return None
        node[step] = node = dict(child)
    items = node.get(path[-1])
    if not isinstance(items, list):
        return None
    node[path[-1]] = []
    parts = []
    for chunk in _cut(items):
        text = canonical(chunk)
        parts.append(Part(text, hashlib.sha256(text.encode()).hexdigest()))
    return Parted(canonical(head), tuple(parts))


def join_parts(domain: str, head: Any, parts: Sequence[Sequence[Any]]) -> Any:
    """The value `split_parts` cut: `head` (parsed, changed in place) with its list
    set to the parts' items, concatenated in order."""
    path = PARTED[domain]
    node = head
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = [item for part in parts for item in part]
    return head
