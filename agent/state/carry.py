"""What one agent process hands to the next: the updates cache and the watchdog's skips.

The daemon keeps both in memory across its cycles, but `run --once` from a systemd
timer is a new process every time: without this file each run would list pending
updates again (most of a cycle's CPU) and run again a collector the watchdog had just
stopped for an hour. So they are kept in `carried.json` in the state directory:

- bounded: at most `MAX_OUTPUTS` outputs of at most `MAX_STDOUT_CHARS` each, at most
  one skip per domain with its reason clipped, and a file over `MAX_FILE_BYTES` is not
  read;
- written atomically (a temporary file in the same directory, fsync, `os.replace`);
- ages, not clock readings: monotonic clocks do not survive a reboot, so the file
  holds each item's age when saved and the wall-clock time of the save; a save dated
  in the future (the clock went back) carries nothing over.

It is a cache: a file that cannot be read or is corrupt is a `StateError` naming the
reason, for the caller to log before going on without it (and overwriting it).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.collectors.platforms.cache import SavedOutput
from agent.errors import StateError

CARRY_FILE = "carried.json"
VERSION = 1
MAX_OUTPUTS = 8
MAX_STDOUT_CHARS = 2 * 1024 * 1024
MAX_KEY_PARTS = 32
MAX_SKIPS = 64
MAX_REASON_CHARS = 4096
MAX_FILE_BYTES = MAX_OUTPUTS * MAX_STDOUT_CHARS * 2 + 1024 * 1024  # JSON escaping doubles


@dataclass(frozen=True)
class SavedSkip:
    """A domain the watchdog stopped, for `left_seconds` more (as of the save)."""

    domain: str
    left_seconds: float
    reason: str


@dataclass(frozen=True)
class Carried:
    outputs: tuple[SavedOutput, ...] = ()
    skips: tuple[SavedSkip, ...] = ()


def carry_path(directory: Path) -> Path:
    return directory / CARRY_FILE


def load_carried(directory: Path, wall: Callable[[], float] = time.time) -> Carried:
    """What the previous process left, aged by the time since; nothing when no file.

    Raises StateError with the reason when the file cannot be read or is not valid.
    """
    path = carry_path(directory)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Carried()
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise StateError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise StateError(f"{path} is not valid JSON ({e})") from e
    return _parse(raw, path, wall())


def save_carried(directory: Path, carried: Carried, wall: Callable[[], float] = time.time) -> None:
    """Write `carried` (bounded) atomically; StateError when it cannot be written."""
    outputs = [o for o in carried.outputs if len(o.stdout) <= MAX_STDOUT_CHARS][:MAX_OUTPUTS]
    payload = {
        "version": VERSION,
        "saved_at": wall(),
        "outputs": [
            {"key": list(o.key), "digest": o.digest, "stdout": o.stdout, "age": o.age_seconds}
            for o in outputs
        ],
        "skips": [
            {"domain": s.domain, "left": s.left_seconds, "reason": s.reason[:MAX_REASON_CHARS]}
            for s in carried.skips[:MAX_SKIPS]
        ],
    }
    path = carry_path(directory)
    tmp_name: str | None = None
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".carried.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(json.dumps(payload).encode("utf-8"))
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as e:
        raise StateError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _parse(raw: Any, path: Path, now: float) -> Carried:
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        raise StateError(f"{path}: not a version {VERSION} object")
    saved_at = _number(raw.get("saved_at"))
    outputs, skips = raw.get("outputs"), raw.get("skips")
    if saved_at is None or not isinstance(outputs, list) or not isinstance(skips, list):
        raise StateError(f"{path}: saved_at, outputs and skips are required")
    if len(outputs) > MAX_OUTPUTS or len(skips) > MAX_SKIPS:
        raise StateError(f"{path}: more than {MAX_OUTPUTS} outputs or {MAX_SKIPS} skips")
    elapsed = now - saved_at
    if elapsed < 0:
        return Carried()  # saved "in the future": no age can be trusted
    return Carried(
        tuple(_output(item, path, elapsed) for item in outputs),
        tuple(_skip(item, path, elapsed) for item in skips),
    )


def _output(item: Any, path: Path, elapsed: float) -> SavedOutput:
    if not isinstance(item, dict):
        raise StateError(f"{path}: an output is not an object")
    key, digest, stdout = item.get("key"), item.get("digest"), item.get("stdout")
    age = _number(item.get("age"))
    if (
        not isinstance(key, list)
        or not 0 < len(key) <= MAX_KEY_PARTS
        or not all(isinstance(part, str) for part in key)
        or not (isinstance(digest, str) and len(digest) == 64)
        or not (isinstance(stdout, str) and len(stdout) <= MAX_STDOUT_CHARS)
        or age is None
        or age < 0
    ):
        raise StateError(f"{path}: an output needs key, digest, stdout and a non-negative age")
    return SavedOutput(tuple(key), digest, stdout, age + elapsed)


def _skip(item: Any, path: Path, elapsed: float) -> SavedSkip:
    if not isinstance(item, dict):
        raise StateError(f"{path}: a skip is not an object")
    domain, reason, left = item.get("domain"), item.get("reason"), _number(item.get("left"))
    if (
        not (isinstance(domain, str) and 0 < len(domain) <= 64)
        or not (isinstance(reason, str) and len(reason) <= MAX_REASON_CHARS)
        or left is None
    ):
        raise StateError(f"{path}: a skip needs domain, reason and seconds left")
    return SavedSkip(domain, left - elapsed, reason)
