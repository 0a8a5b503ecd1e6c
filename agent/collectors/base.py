"""What every collector shares: the context it reads the host through, its result
type, its error kinds, and small helpers for reading files and formatting values so
that the document always fits the schema.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.collectors.failures import (
    CollectorError,
    ErrorKind,
    FileDeniedError,
    FileReadError,
    Issue,
)
from agent.collectors.system import PsutilSystem, System
from agent.collectors.tlsprobe import TlsProber, probe
from agent.errors import CommandError, CommandNotFound, CommandTimeout
from agent.runner import CommandRunner, SubprocessRunner

# The failure types live in their own module (the system facade raises them too) and
# are re-exported here, where every collector finds what it shares.
__all__ = [
    "FQDN_TIMEOUT_SECONDS",
    "MAX_FILE_BYTES",
    "CollectContext",
    "CollectSettings",
    "Collected",
    "CollectorError",
    "CollectorFn",
    "ErrorKind",
    "FileDeniedError",
    "FileReadError",
    "FqdnResolver",
    "Issue",
    "clip",
    "describe_os_error",
    "host_has",
    "list_dir",
    "read_bytes_at",
    "read_file",
    "read_file_or_issue",
    "resolve_fqdn",
    "rfc3339_utc",
    "run_tool",
    "running_commands",
]

FqdnResolver = Callable[[str], str | None]

# /proc files report a size of 0, so reads are bounded by this instead of stat().
MAX_FILE_BYTES = 1024 * 1024
FQDN_TIMEOUT_SECONDS = 2.0


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
class CollectSettings:
    """What the administrator configured for collection (the `agent:` config section).

    `certificate_paths` None means the built-in defaults (see `certificates`); an
    endpoint is "host:port" or "[v6]:port".
    """

    certificate_paths: tuple[str, ...] | None = None
    tls_endpoints: tuple[str, ...] = ()
    probe_listeners: bool = True


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CollectContext:
    """Everything a collector may read the host through."""

    root: Path = Path("/")
    run: CommandRunner = field(default_factory=SubprocessRunner)
    system: System = field(default_factory=PsutilSystem)
    fqdn_resolver: FqdnResolver = resolve_fqdn
    settings: CollectSettings = field(default_factory=CollectSettings)
    # From the agent's state: "name:arch=candidate" -> when that update was first seen
    # pending. Read-only here; the CLI records the new set after the collection.
    first_seen: Mapping[str, str] = field(default_factory=dict)
    # From the agent's state: since when it has been watching pending updates (RFC
    # 3339); None for a collection without a state, which starts watching now.
    pending_watched_since: str | None = None
    now: Callable[[], datetime] = _utc_now
    # TLS handshakes go through here like every other I/O, so tests can inject them.
    tls_prober: TlsProber = probe
    # time.monotonic() by which this collector's thread is abandoned (its own budget
    # within the collection's), set by agent.document for each collector; None: none
    # known. Work with its own deadline (the certificates probes) keeps inside it.
    deadline: float | None = None

    def seconds_left(self) -> float | None:
        """Seconds until `deadline` (never negative), None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def path(self, absolute: str) -> Path:
        """`absolute` (a path on the host, like "/etc/os-release") under `root`."""
        return self.root / absolute.lstrip("/")


CollectorFn = Callable[[CollectContext], Collected]


def read_bytes_at(path: Path, shown: str, max_bytes: int = MAX_FILE_BYTES) -> bytes | None:
    """The first `max_bytes` of the file at `path`, or None when it does not exist.

    The one place collectors read files, because "absent", "denied" and "failed" mean
    different things to an auditor: a file that is not there is a fact (None), a file
    the agent may not read raises `FileDeniedError` (an `errors` entry of kind permission
    naming `shown`, the path on the host), any other failure raises `FileReadError`.
    Both are `CollectorError`s: uncaught, they cost the domain; caught, `.issue` keeps
    the domain and records the partial failure.
    """
    try:
        with path.open("rb") as handle:
            return handle.read(max_bytes)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as e:
        raise FileDeniedError(shown, e) from e
    except OSError as e:
        raise FileReadError(shown, e) from e


def read_file(ctx: CollectContext, absolute: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Host file `absolute` (under `ctx.root`) as text, or None when it does not exist.

    Decoded leniently: facts must never fail on a stray byte. Raises `FileDeniedError` or
    `FileReadError` (see `read_bytes_at`).
    """
    data = read_bytes_at(ctx.path(absolute), absolute, max_bytes)
    return None if data is None else data.decode("utf-8", errors="replace")


def read_file_or_issue(
    ctx: CollectContext,
    absolute: str,
    issues: list[Issue],
    label: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> str | None:
    """`read_file` for a collector that carries on without the file: None when it is
    absent, and also when it is denied or failed, which then appends its issue (naming
    the path, after `label`, the fact it was read for) to `issues`.
    """
    try:
        return read_file(ctx, absolute, max_bytes)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"{label}: {e.reason}" if label else e.reason))
        return None


def list_dir(
    ctx: CollectContext, absolute: str, issues: list[Issue], label: str | None = None
) -> list[str]:
    """The sorted names in host directory `absolute`: empty when it does not exist, and
    also when it is denied or cannot be listed, which then appends its issue (naming
    the directory, after `label`) to `issues`, as `read_file_or_issue` does for files.
    """
    try:
        return sorted(entry.name for entry in ctx.path(absolute).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        kind, why = describe_os_error(e)
        reason = f"{absolute}: {why}"
        issues.append(Issue(kind, f"{label}: {reason}" if label else reason))
        return []


def describe_os_error(error: OSError) -> tuple[ErrorKind, str]:
    kind = ErrorKind.PERMISSION if isinstance(error, PermissionError) else ErrorKind.FAILED
    return kind, error.strerror or str(error)


def run_tool(
    ctx: CollectContext, argv: list[str], timeout: float, *, ok_codes: tuple[int, ...] = (0,)
) -> str:
    """`argv`'s standard output; a missing program, a timeout or a failure becomes a
    `CollectorError` naming the command, for the caller to report or absorb."""
    try:
        result = ctx.run(argv, timeout)
    except CommandNotFound as e:
        raise CollectorError(ErrorKind.UNSUPPORTED, f"{argv[0]} is not installed") from e
    except CommandTimeout as e:
        raise CollectorError(ErrorKind.TIMEOUT, str(e)) from e
    except CommandError as e:
        raise CollectorError(ErrorKind.FAILED, str(e)) from e
    if result.returncode not in ok_codes:
        why = (result.stderr.strip() or result.stdout.strip()).splitlines()
        detail = why[0] if why else ""
        lowered = (result.stderr or "").lower()
        kind = (
            ErrorKind.PERMISSION
            if "permission denied" in lowered
            or "must be root" in lowered
            or "access denied" in lowered
            or "operation not permitted" in lowered
            else ErrorKind.FAILED
        )
        raise CollectorError(
            kind, clip(f"{' '.join(argv)} exited with {result.returncode}: {detail}", 1024)
        )
    return result.stdout


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


def running_commands(ctx: CollectContext) -> set[str]:
    """Names (`comm`, 15 characters at most) of the processes running on the host.

    /proc/<pid>/comm is readable by every user (unless /proc is mounted with hidepid,
    in which case only the caller's own processes are seen).
    """
    names: set[str] = set()
    try:
        entries = list(ctx.path("/proc").iterdir())
    except OSError:
        return names
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            comm = read_bytes_at(entry / "comm", f"/proc/{entry.name}/comm", 4096)
        except CollectorError:
            # A process that exits between the listing and the read fails with ESRCH;
            # comm is readable by all, so skipping it hides nothing that still runs.
            continue
        if comm is not None:  # None: the process exited meanwhile
            names.add(comm.decode("utf-8", errors="replace").strip())
    return names


def host_has(ctx: CollectContext, *paths: str) -> bool:
    """Whether any of `paths` (host paths) exists under the root."""
    return any(ctx.path(p).exists() for p in paths)
