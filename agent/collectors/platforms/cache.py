"""Reusing a package manager's answer while what it reads is unchanged.

`apt list --upgradable` is most of a steady-state cycle's CPU, yet the pending updates
it prints change only when the package index (`apt-get update`), the installed set
(dpkg) or the apt configuration changes; `dpkg-query`'s listing (run by both the
packages and the updates domains) only when dpkg's status does. So their output is
kept, in this process (the daemon's cycles share it), keyed by the command, the root
and a fingerprint of those inputs: path, inode, size and modification time of each
file, and of each entry of each directory (one level). Any change, or
`MAX_AGE_SECONDS`, runs the command again.

Only the real runner's output is kept (a test's recorded runner is never cached), and
a fingerprint that cannot be taken (a directory that cannot be read) means no reuse.

`run --once` from a timer is a new process each time: `saved()` and `restore()` let
`agent.state.carry` keep the entries in the state directory between runs. An entry
holds a SHA-256 digest of its fingerprint, not the fingerprint (thousands of stamps).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.collectors.base import CollectContext, run_tool
from agent.runner import SubprocessRunner

MAX_AGE_SECONDS = 6 * 3600.0  # a bound on anything the fingerprint could miss
MAX_DIR_ENTRIES = 5000

Stamp = tuple[str, int, int, int] | tuple[str, None]
Fingerprint = tuple[Stamp, ...]

# What `dpkg-query -W` reads: the status file and the journal of an interrupted run.
DPKG_INPUTS = ("/var/lib/dpkg/status", "/var/lib/dpkg/updates")
DEBIAN_INPUTS = (
    "/var/lib/dpkg/status",
    "/var/lib/apt/lists",
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/apt/preferences",
    "/etc/apt/preferences.d",
    "/etc/apt/apt.conf.d",
)
RHEL_INPUTS = (
    "/var/lib/rpm",
    "/usr/lib/sysimage/rpm",
    "/var/cache/dnf",
    "/var/cache/yum",
    "/etc/yum.repos.d",
    "/etc/dnf",
    "/etc/yum.conf",
)


@dataclass(frozen=True)
class _Entry:
    digest: str  # of the inputs' fingerprint
    stdout: str
    stored: float


@dataclass(frozen=True)
class SavedOutput:
    """One cached output as kept between processes: its age instead of a clock reading."""

    key: tuple[str, ...]
    digest: str
    stdout: str
    age_seconds: float


def digest_of(fingerprint: Fingerprint) -> str:
    return hashlib.sha256(json.dumps(fingerprint).encode("utf-8")).hexdigest()


class OutputCache:
    """Command outputs kept while their inputs' fingerprint holds."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_age: float = MAX_AGE_SECONDS
    ) -> None:
        self._clock = clock
        self._max_age = max_age
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def run(
        self,
        ctx: CollectContext,
        argv: list[str],
        timeout: float,
        inputs: tuple[str, ...],
        *,
        ok_codes: tuple[int, ...] = (0,),
    ) -> str:
        """`run_tool(ctx, argv, ...)`, or its last output while `inputs` are unchanged."""
        return self.produce(
            ctx, argv, inputs, lambda: run_tool(ctx, argv, timeout, ok_codes=ok_codes)
        )

    def produce(
        self,
        ctx: CollectContext,
        key_argv: list[str],
        inputs: tuple[str, ...],
        make: Callable[[], str],
    ) -> str:
        """`make()`, or the last output kept under `key_argv` while `inputs` are
        unchanged (`make` may run another command giving the same answer)."""
        fingerprint = fingerprint_of(ctx, inputs) if isinstance(ctx.run, SubprocessRunner) else None
        if fingerprint is None:
            return make()
        key = (str(ctx.root), *key_argv)
        digest = digest_of(fingerprint)
        with self._lock:
            entry = self._entries.get(key)
        if (
            entry is not None
            and entry.digest == digest
            and 0 <= self._clock() - entry.stored < self._max_age
        ):
            self.hits += 1
            return entry.stdout
        self.misses += 1
        stdout = make()
        # Taken again after the run: an index refreshed meanwhile must not be
        # remembered as the state this output describes.
        if fingerprint_of(ctx, inputs) == fingerprint:
            with self._lock:
                self._entries[key] = _Entry(digest, stdout, self._clock())
        return stdout

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def forget(self, argv: list[str]) -> None:
        """Drop the entries of one command (whatever the root)."""
        with self._lock:
            for key in [k for k in self._entries if list(k[1:]) == argv]:
                del self._entries[key]

    def saved(self) -> list[SavedOutput]:
        """The entries still fresh, youngest first."""
        now = self._clock()
        with self._lock:
            entries = list(self._entries.items())
        kept = [
            SavedOutput(key, e.digest, e.stdout, now - e.stored)
            for key, e in entries
            if 0 <= now - e.stored < self._max_age
        ]
        return sorted(kept, key=lambda s: s.age_seconds)

    def restore(self, saved: list[SavedOutput]) -> int:
        """Adopt saved entries still fresh whose key this process has not cached
        (its own entries are newer); how many were adopted."""
        now = self._clock()
        adopted = 0
        with self._lock:
            for item in saved:
                if item.key in self._entries or not 0 <= item.age_seconds < self._max_age:
                    continue
                self._entries[item.key] = _Entry(item.digest, item.stdout, now - item.age_seconds)
                adopted += 1
        return adopted


def _stamp(path: str, st: os.stat_result) -> Stamp:
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def fingerprint_of(ctx: CollectContext, inputs: tuple[str, ...]) -> Fingerprint | None:
    """The stamps of `inputs` (host paths) and of their directories' entries, or None
    when one cannot be read."""
    stamps: list[Stamp] = []
    for host_path in inputs:
        path = ctx.path(host_path)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            stamps.append((host_path, None))
            continue
        except OSError:
            return None
        stamps.append(_stamp(host_path, st))
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError:
            return None
        if len(names) > MAX_DIR_ENTRIES:
            return None
        for name in names:
            try:
                stamps.append(_stamp(f"{host_path}/{name}", os.stat(path / name)))
            except FileNotFoundError:
                stamps.append((f"{host_path}/{name}", None))  # a dangling link, or gone
            except OSError:
                return None
    return tuple(stamps)


CACHE = OutputCache()
