"""The clock the collector's core takes as a dependency (tests pass a fixed one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, timezone-aware UTC: the only kind of time the collector handles."""
    return datetime.now(UTC)
