"""The durable spool: no report is lost while the collector is away.

Every report is written to `<state dir>/spool/` (gzip JSON, written to a temporary
file, fsynced, renamed, directory fsynced) BEFORE the first delivery attempt, and
removed only after the collector's 2xx. The same file is re-sent as it is, so a report
the collector stored but whose answer was lost comes back with the same `report_id`
and the collector's dedup makes the effect exactly once.

Delivery goes in sequence order (file names start with the zero-padded `seq`). A
transient failure (unreachable, TLS, 5xx, 401/403/404: the collector or the
configuration, not this report) stops the drain and backs off exponentially with
jitter, or for the collector's Retry-After on a 429/503. After an outage the backlog
is sent at a capped rate (`min_spacing_seconds` between reports). A permanent refusal
of the report itself (400, 413, 415, 422) moves it to `spool/quarantine/` beside a
`.answer.txt` with the collector's answer: retrying would never succeed.

The spool is bounded by count and bytes. When full, the oldest reports are dropped;
their number is carried in the next spooled document as `spool_dropped_reports`, so
each dropped report is told to the collector exactly once (a document carrying a count
that is itself dropped passes its count on). A spool file that cannot be read back
(corrupt, truncated) is quarantined and counted the same way: never a crash loop.
"""

from __future__ import annotations

import enum
import fcntl
import gzip
import json
import os
import random
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.delivery.transport import Delivery, Transport
from agent.errors import AgentError, ShippingError

SPOOL_DIR = "spool"
QUARANTINE_DIR = "quarantine"
DROPPED_FILE = "dropped.json"
LOCK_FILE = ".lock"
SUFFIX = ".json.gz"
DROPPED_FIELD = "spool_dropped_reports"
# 72 hours offline at the default 15-minute interval is 288 reports; 1,000 holds ten
# days. A compressed report is typically 20-200 kB, so 1,000 of them fit in 128 MiB.
DEFAULT_MAX_REPORTS = 1000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
MAX_REPORT_BYTES = 64 * 1024 * 1024  # decompressed; a bigger spool file is corrupt
# The report itself is refused: sending it again would be refused again.
PERMANENT_STATUSES = frozenset({400, 413, 415, 422})


class SpoolError(AgentError):
    """The spool directory cannot be used (read-only, full disk, not a directory)."""


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    QUARANTINED = "quarantined"  # refused for good, or unreadable
    RETRY = "retry"  # kept; the next attempt waits for the backoff


@dataclass(frozen=True)
class SpoolLimits:
    max_reports: int = DEFAULT_MAX_REPORTS
    max_bytes: int = DEFAULT_MAX_BYTES
    # The capped rate of a drain after an outage: the collector's default per-agent
    # rate is 60 reports a minute, so a backlog never trips its limiter (a 429 is
    # still honoured); a full 72-hour spool drains in about 5 minutes.
    min_spacing_seconds: float = 1.0
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 900.0


@dataclass(frozen=True)
class Attempt:
    """One spooled report's delivery attempt."""

    name: str
    outcome: Outcome
    delivery: Delivery | None = None
    error: ShippingError | None = None
    reason: str = ""  # why a file was quarantined without being sent (unreadable)


@dataclass(frozen=True)
class Spooled:
    path: Path
    dropped: int  # oldest reports dropped to make room for this one


@dataclass(frozen=True)
class DrainResult:
    attempts: tuple[Attempt, ...] = ()
    pending: int = 0
    retry_in: float | None = None  # seconds until the next attempt is allowed

    def delivered(self, name: str) -> bool:
        return any(a.name == name and a.outcome is Outcome.DELIVERED for a in self.attempts)


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def fail(self, now: float, limits: SpoolLimits, retry_after: float | None) -> float:
        self.failures += 1
        if retry_after is not None:
            delay = retry_after
        else:
            ceiling = min(
                limits.backoff_max_seconds,
                limits.backoff_base_seconds * 2 ** min(self.failures - 1, 30),
            )
            # "Equal jitter": never less than half the step, so a province's agents
            # that lost the collector together do not come back together.
            delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        self.not_before = now + delay
        return delay


class Spool:
    """The spool of one state directory, delivering through `transport`."""

    def __init__(
        self,
        state_dir: Path,
        transport: Transport,
        limits: SpoolLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = state_dir / SPOOL_DIR
        self.quarantine_dir = self.directory / QUARANTINE_DIR
        self.transport = transport
        self.limits = limits or SpoolLimits()
        self._clock = clock
        # jitter only spreads retries in time; nothing secret depends on it
        self._backoff = _Backoff(rng=rng or random.Random())  # noqa: S311

    # writing ---------------------------------------------------------------------------

    def put(self, document: Mapping[str, Any]) -> Spooled:
        """Store `document` durably (with the count of dropped reports not told yet);
        SpoolError when the directory cannot be written."""
        with self._locked():
            dropped = self._make_room()
            owed = self._read_dropped() + dropped
            body = dict(document)
            if owed:
                body[DROPPED_FIELD] = owed
            data = gzip.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"))
            name = f"{int(body.get('seq', 0)):020d}-{body.get('report_id', 'unknown')}{SUFFIX}"
            path = self.directory / name
            self._write_atomically(path, data)
            # Written after the report: a crash in between counts the drops twice,
            # never zero times.
            self._write_dropped(0)
            return Spooled(path, dropped)

    def recover(self) -> int:
        """Remove what a process killed mid-write left behind; the number of reports
        waiting. The daemon calls it at start, so a leftover never outlives a restart
        even when no cycle runs before the next stop."""
        with self._locked():
            return self.count()

    def _make_room(self) -> int:
        files = self._files()
        sizes = [_size(p) for p in files]
        total = sum(sizes)
        dropped = 0
        while files and (len(files) >= self.limits.max_reports or total >= self.limits.max_bytes):
            oldest = files.pop(0)
            total -= sizes.pop(0)
            dropped += 1 + self._carried(oldest)
            _unlink(oldest)
        if dropped:
            _fsync_directory(self.directory)
        return dropped

    def _carried(self, path: Path) -> int:
        """The drop count a report being dropped was carrying (0 when unreadable)."""
        try:
            value = _load(path).get(DROPPED_FIELD, 0)
        except SpoolError:
            return 0
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    # delivering ------------------------------------------------------------------------

    def retry_in(self) -> float:
        """Seconds until the backoff allows the next attempt (0 when it does now)."""
        return max(0.0, self._backoff.not_before - self._clock())

    def backoff(self) -> tuple[int, float]:
        """The backoff: failures in a row, and the clock reading before which no
        delivery is tried (a cycle run in a child process hands it to the daemon)."""
        return self._backoff.failures, self._backoff.not_before

    def adopt_backoff(self, failures: int, not_before: float) -> None:
        """Take over a backoff from `backoff()` of the same spool in another process."""
        self._backoff.failures = max(0, failures)
        self._backoff.not_before = not_before

    def drain(self, wait: Callable[[float], bool] | None = None) -> DrainResult:
        """Send the spooled reports in order until one fails transiently.

        `wait(seconds)` spaces the sends and returns True when the caller wants to stop
        (the daemon's SIGTERM); a stop leaves the rest spooled.
        """
        wait = wait or _sleep
        if self.retry_in() > 0:
            return DrainResult(pending=self.count(), retry_in=self.retry_in())
        try:
            attempts, pending = self._drain_locked(wait)
        except SpoolError:
            # The spool went unusable (a disk remounted read-only): back off, or the
            # caller would retry, and maybe re-send the same report, in a tight loop.
            self._backoff.fail(self._clock(), self.limits, None)
            raise
        retry = self.retry_in()
        return DrainResult(tuple(attempts), pending, retry if pending and retry > 0 else None)

    def _drain_locked(self, wait: Callable[[float], bool]) -> tuple[list[Attempt], int]:
        attempts: list[Attempt] = []
        with self._locked():
            for index, path in enumerate(self._files()):
                if index and wait(self.limits.min_spacing_seconds):
                    break
                attempt = self._deliver(path)
                attempts.append(attempt)
                if attempt.outcome is Outcome.RETRY:
                    break
            return attempts, len(self._files())

    def _deliver(self, path: Path) -> Attempt:
        try:
            document = _load(path)
        except SpoolError as e:
            self._quarantine(path, str(e))
            self._write_dropped(self._read_dropped() + 1)
            return Attempt(path.name, Outcome.QUARANTINED, reason=str(e))
        try:
            delivery = self.transport.send(document)
        except ShippingError as e:
            if e.status in PERMANENT_STATUSES:
                self._quarantine(path, e.detail or str(e))
                return Attempt(path.name, Outcome.QUARANTINED, error=e)
            self._backoff.fail(self._clock(), self.limits, e.retry_after)
            return Attempt(path.name, Outcome.RETRY, error=e)
        self._backoff.failures = 0
        self._backoff.not_before = 0.0
        _unlink(path)
        _fsync_directory(self.directory)
        return Attempt(path.name, Outcome.DELIVERED, delivery=delivery)

    def _quarantine(self, path: Path, answer: str) -> None:
        try:
            self.quarantine_dir.mkdir(mode=0o700, exist_ok=True)
            (self.quarantine_dir / (path.name + ".answer.txt")).write_text(answer + "\n", "utf-8")
            os.replace(path, self.quarantine_dir / path.name)
            _fsync_directory(self.directory)
        except OSError as e:
            raise SpoolError(f"cannot quarantine {path}: {e.strerror or e}") from e

    # the directory ---------------------------------------------------------------------

    def count(self) -> int:
        try:
            return len(self._files())
        except SpoolError:
            return 0

    def quarantined(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(p for p in self.quarantine_dir.iterdir() if p.name.endswith(SUFFIX))

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        except OSError as e:
            raise SpoolError(f"cannot read the spool {self.directory}: {e.strerror or e}") from e

    def _read_dropped(self) -> int:
        try:
            value = json.loads((self.directory / DROPPED_FILE).read_text("utf-8"))["dropped"]
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError):
            # A torn counter loses at most the count of one outage, never a report.
            return 0
        return value if isinstance(value, int) and value > 0 else 0

    def _write_dropped(self, count: int) -> None:
        target = self.directory / DROPPED_FILE
        if count == 0 and not target.exists():
            return
        payload = json.dumps({"dropped": count}).encode("utf-8")
        self._write_atomically(target, payload)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        temporary: str | None = None
        try:
            fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            temporary = None
            _fsync_directory(self.directory)
        except OSError as e:
            raise SpoolError(
                f"cannot write to the spool {self.directory}: {e.strerror or e}"
            ) from e
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time (the daemon and a `run --once` from cron); leftovers
        of a process killed mid-write are removed under the lock."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = open(self.directory / LOCK_FILE, "a")  # noqa: SIM115 - held across the block
        except OSError as e:
            raise SpoolError(f"cannot use the spool {self.directory}: {e.strerror or e}") from e
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                for leftover in self.directory.glob(".tmp-*"):
                    _unlink(leftover)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def _load(path: Path) -> dict[str, Any]:
    """A spooled document; SpoolError when it cannot be read back."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            raise SpoolError(f"{path.name}: larger than {MAX_REPORT_BYTES} bytes")
        document = json.loads(data)
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise SpoolError(f"{path.name} is unreadable: {e}") from e
    if not isinstance(document, dict) or not isinstance(document.get("report_id"), str):
        raise SpoolError(f"{path.name} is not a facts document")
    return document


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        raise SpoolError(f"cannot remove {path}: {e.strerror or e}") from e


def _fsync_directory(directory: Path) -> None:
    # Makes a rename or unlink itself durable across a power cut.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise SpoolError(f"cannot open {directory}: {e.strerror or e}") from e
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
