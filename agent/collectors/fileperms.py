"""The `file_permissions` domain: world-writable files and directories without the
sticky bit, found by a bounded walk.

Only the places where a writable file is a way in are walked: configuration, programs
and web or service data (`ROOTS`), never /proc, /sys, /dev, /run, the temporary
directories, /usr/lib or the home directories (their size is unbounded; a fixed
budget keeps the walk under a fraction of a CPU second). Symbolic links are not
followed and other filesystems are not entered (each root stays on its own device).
The walk stops after `MAX_ENTRIES` entries; a cut walk, or a directory the agent may
not list, makes `complete` false and adds an `errors` entry, so "none found" is only
said of a full walk.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from agent.collectors.base import CollectContext, Collected, ErrorKind, Issue, clip

ROOTS = (
    "/etc",
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local",
    "/opt",
    "/srv",
    "/var/www",
    "/boot",
)
MAX_ENTRIES = 50_000
MAX_REPORTED = 100


def collect_file_permissions(ctx: CollectContext) -> Collected:
    walk = _Walk(ctx)
    for root in ROOTS:
        walk.root(root)
    issues: list[Issue] = []
    if walk.denied:
        shown = ", ".join(walk.denied[:10])
        issues.append(
            Issue(ErrorKind.PERMISSION, f"{len(walk.denied)} directories not listed: {shown}")
        )
    if walk.left <= 0:
        issues.append(Issue(ErrorKind.FAILED, f"walk stopped after {MAX_ENTRIES} entries"))
    complete = not issues

    def count(found: list[str]) -> int | None:
        # none found by a walk that was not complete: unknown, not zero
        return len(found) if found or complete else None

    data = {
        "complete": complete,
        "entries_scanned": MAX_ENTRIES - max(walk.left, 0),
        "world_writable_files": walk.files[:MAX_REPORTED],
        "world_writable_files_count": count(walk.files),
        "unprotected_directories": walk.dirs[:MAX_REPORTED],
        "unprotected_directories_count": count(walk.dirs),
    }
    return Collected(data, tuple(issues))


class _Walk:
    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.left = MAX_ENTRIES
        self.files: list[str] = []
        self.dirs: list[str] = []
        self.denied: list[str] = []
        self.seen: set[tuple[int, int]] = set()  # /bin -> /usr/bin on merged-usr hosts

    def root(self, absolute: str) -> None:
        path = self.ctx.path(absolute)
        try:
            info = path.stat()  # a root may be a link (/bin -> usr/bin)
        except OSError:
            return  # absent: nothing to walk
        if stat.S_ISDIR(info.st_mode):
            self.directory(str(path), absolute, info.st_dev)

    def directory(self, real: str, shown: str, device: int) -> None:
        stack = [(real, shown)]
        while stack and self.left > 0:
            real_dir, shown_dir = stack.pop()
            try:
                identity = os.stat(real_dir)
                key = (identity.st_dev, identity.st_ino)
                if key in self.seen:
                    continue
                self.seen.add(key)
                with os.scandir(real_dir) as entries:
                    listed = list(entries)
            except PermissionError:
                self.denied.append(shown_dir)
                continue
            except OSError:
                continue  # vanished meanwhile
            prefix = shown_dir.rstrip("/")
            for entry in listed:
                self.left -= 1
                if self.left <= 0:
                    return
                try:
                    # The entry's type comes with the listing (no system call): a
                    # symbolic link is neither walked nor reported, so it needs no stat.
                    if entry.is_symlink():
                        continue
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                mode = info.st_mode
                if stat.S_ISDIR(mode):
                    if info.st_dev != device:
                        continue  # another filesystem
                    shown_path = clip(f"{prefix}/{entry.name}", 1024)
                    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
                        self.dirs.append(shown_path)
                    stack.append((entry.path, shown_path))
                elif stat.S_ISREG(mode) and mode & stat.S_IWOTH:
                    self.files.append(clip(f"{prefix}/{entry.name}", 1024))


def summary(data: dict[str, Any]) -> str:
    """One line for humans (benchmarks, debugging)."""
    return (
        f"{data['entries_scanned']} entries, {data['world_writable_files_count']} files, "
        f"{data['unprotected_directories_count']} directories"
    )
