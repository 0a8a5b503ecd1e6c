"""The `log_files` domain: log files under /var/log that others can read or change.

Logs hold user names, addresses, sometimes session tokens or passwords typed in the
wrong field; a log others can write can be rewritten to hide an intrusion. Walked
without following symlinks and without leaving /var/log's file system, bounded by
`MAX_ENTRIES` and `MAX_DEPTH`: an incomplete walk (a directory unreadable, the cap
reached) makes `files` null with the reason, never a clean list. Reported: only the
regular files with a permission bit for others or write for the group, with `mode`,
`others_read`, `others_write` and `group_write`.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    ErrorKind,
    Issue,
    clip,
    describe_os_error,
)

LOG_DIR = "/var/log"
MAX_ENTRIES = 20000
MAX_DEPTH = 6
MAX_REPORTED = 1000


def collect_log_files(ctx: CollectContext) -> Collected:
    root = ctx.path(LOG_DIR)
    issues: list[Issue] = []
    found: list[dict[str, Any]] = []
    try:
        device = os.lstat(root).st_dev
    except OSError as e:
        kind, why = describe_os_error(e)
        return Collected({"complete": False, "files": None}, (Issue(kind, f"{LOG_DIR}: {why}"),))
    seen = 0
    stack: list[tuple[str, int]] = [("", 0)]
    while stack:
        relative, depth = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(root, relative)), key=lambda e: e.name)
        except OSError as e:
            kind, why = describe_os_error(e)
            issues.append(Issue(kind, f"{LOG_DIR}/{relative}: {why}".rstrip("/")))
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                issues.append(
                    Issue(ErrorKind.SKIPPED, f"{LOG_DIR}: more than {MAX_ENTRIES} entries")
                )
                return Collected({"complete": False, "files": None}, tuple(issues))
            path = f"{relative}/{entry.name}" if relative else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # rotated away between the listing and the stat
            if stat.S_ISDIR(info.st_mode) and info.st_dev == device and depth < MAX_DEPTH:
                stack.append((path, depth + 1))
            elif stat.S_ISREG(info.st_mode) and info.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
                found.append(_item(f"{LOG_DIR}/{path}", info.st_mode))
    complete = not issues
    files = sorted(found, key=lambda f: f["path"])[:MAX_REPORTED] if complete else None
    return Collected({"complete": complete, "files": files}, tuple(issues))


def _item(path: str, mode: int) -> dict[str, Any]:
    return {
        "path": clip(path, 4096),
        "mode": f"{stat.S_IMODE(mode):04o}",
        "others_read": bool(mode & stat.S_IROTH),
        "others_write": bool(mode & stat.S_IWOTH),
        "group_write": bool(mode & stat.S_IWGRP),
    }
