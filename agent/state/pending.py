"""Remembering when each pending update was first seen, so its age is a fact.

Package managers know what is pending now, not since when. The agent keeps, in its
state file, the time it first saw each (name, architecture, candidate version)
pending; the `updates` collector reads that snapshot (through `CollectContext`) to
report `first_seen_at` and `pending_days`, and after the collection the new set
replaces the old one, so a package that was upgraded (or whose candidate changed)
starts counting afresh. Collectors never write: this runs in the CLI, under the state
lock.

What no package manager records is since when an update was pending before the agent
first looked: the first collection's sightings are the time of that collection. So the
state also keeps when it started watching (`pending_watched_since`, the first
collection's `collected_at`), reported beside the list: an update first seen at that
instant has been pending at least that long, maybe much longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import StateError
from agent.state.store import AgentState, StateStore, default_state_dir

# Bounds the state file whatever the host reports (the schema caps pending lists too).
MAX_REMEMBERED = 20000


def pending_key(name: str, architecture: str, candidate: str) -> str:
    # Package names and architectures never contain ':' or '=' (dpkg and rpm forbid
    # them), so the key cannot be ambiguous.
    return f"{name}:{architecture}={candidate}"


def first_seen_map(document: Mapping[str, Any]) -> dict[str, str]:
    """`pending_key -> first_seen_at` for every pending update in `document`."""
    updates = document.get("updates")
    if not isinstance(updates, dict):
        return {}
    seen: dict[str, str] = {}
    for item in updates.get("pending", [])[:MAX_REMEMBERED]:
        key = pending_key(item["name"], item["architecture"], item["candidate_version"])
        seen[key] = item["first_seen_at"]
    return seen


def remember_pending(store: StateStore, document: Mapping[str, Any]) -> None:
    """Replace the remembered set with the document's; keep the old one when the updates
    domain is missing (a failed collection must not reset every age to zero)."""
    if not isinstance(document.get("updates"), dict):
        return
    seen = first_seen_map(document)
    collected_at = document.get("collected_at")

    def change(state: AgentState) -> AgentState:
        watched = state.pending_watched_since
        if watched is None and isinstance(collected_at, str):
            # A state written before this field existed has been watching since its
            # earliest sighting at least.
            watched = min([collected_at, *seen.values()], key=_instant)
        return replace(state, pending_seen=seen, pending_watched_since=watched)

    store.update(change)


def _instant(stamp: str) -> datetime:
    """An RFC 3339 time for ordering; an unreadable one sorts last (never chosen)."""
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def peek_first_seen(state_dir: Path | None) -> tuple[Mapping[str, str], str | None]:
    """The remembered set and since when it has been kept, read without locking or
    writing; nothing when unreadable."""
    try:
        state = StateStore(state_dir or default_state_dir()).load()
    except StateError:
        return {}, None
    return state.pending_seen, state.pending_watched_since
