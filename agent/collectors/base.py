"""What every collector shares: the context it reads the host through, its result
type, its error kinds, and small helpers for reading files and formatting values so
that the document always fits the schema.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.collectors.system import PsutilSystem, System
from agent.errors import AgentError
from agent.runner import CommandRunner, SubprocessRunner

FqdnResolver = Callable[[str], str | None]

# /proc files report a size of 0, so reads are bounded by this instead of stat().
MAX_FILE_BYTES = 1024 * 1024
FQDN_TIMEOUT_SECONDS = 2.0


class ErrorKind(StrEnum):
    """Why a collector produced nothing or only part of its domain (schema: collector_error)."""

    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMISSION = "permission"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"


class CollectorError(AgentError):
    """A collector cannot produce its domain; becomes one `errors` entry of the document."""

    def __init__(self, kind: ErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Issue:
    """A partial failure: the domain is still reported, with this entry in `errors`."""

    kind: ErrorKind
    reason: str


@dataclass(frozen=True)
class Collected:
    """A collector's output: the domain's JSON value and its partial failures."""

    data: Any
    issues: tuple[Issue, ...] = ()


def resolve_fqdn(hostname: str, timeout: float = FQDN_TIMEOUT_SECONDS) -> str | None:
    """The canonical name of `hostname` (what `hostname -f` prints), or None.

    Resolution goes through the system resolver, which has no timeout of its own; a
    daemon thread bounds it so a broken DNS server cannot stall a collection.
    """
    answer: list[str | None] = [None]

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME)
        except (OSError, UnicodeError):
            return
        for info in infos:
            if info[3]:
                answer[0] = info[3]
                return

    thread = threading.Thread(target=lookup, name="fqdn-lookup", daemon=True)
    thread.start()
    thread.join(timeout)
    name = answer[0]
    # A name without a dot is just the hostname again, not a fully qualified one.
    return name if name and "." in name.strip(".") else None


@dataclass(frozen=True)
class CollectContext:
    """Everything a collector may read the host through."""

    root: Path = Path("/")
    run: CommandRunner = field(default_factory=SubprocessRunner)
    system: System = field(default_factory=PsutilSystem)
    fqdn_resolver: FqdnResolver = resolve_fqdn

    def path(self, absolute: str) -> Path:
        """`absolute` (a path on the host, like "/etc/os-release") under `root`."""
        return self.root / absolute.lstrip("/")


CollectorFn = Callable[[CollectContext], Collected]


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A small text file, decoded leniently: facts must never fail on a stray byte."""
    with path.open("rb") as handle:
        return handle.read(max_bytes).decode("utf-8", errors="replace")


def describe_os_error(error: OSError) -> tuple[ErrorKind, str]:
    kind = ErrorKind.PERMISSION if isinstance(error, PermissionError) else ErrorKind.FAILED
    return kind, error.strerror or str(error)


def clip(value: str, limit: int) -> str:
    """`value` cut to `limit` characters: an oversized field must not void the report."""
    return value if len(value) <= limit else value[:limit]


def rfc3339_utc(moment: datetime | float) -> str:
    """`2026-11-27T08:00:00Z` (UTC, `Z` suffix, fractional seconds only when present)."""
    if isinstance(moment, datetime):
        value = moment.astimezone(UTC)
    else:
        value = datetime.fromtimestamp(moment, UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
