"""The `home_directories` domain: who else can enter people's home directories.

For every account a person logs in with (UID at or above `UID_MIN`, not `nobody`, a
login shell), its home directory's mode and owner (stat, following a symlink as a
login does). A home others can read exposes SSH keys' names, shell histories and
documents; one the group or others can write lets them plant a `.bashrc` or
`authorized_keys`; one owned by someone else is theirs to change. A home that does not
exist is reported (`exists: false`) and not judged.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from agent.collectors.accounts import NOLOGIN_SHELLS, parse_colon_file
from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    describe_os_error,
    read_file,
)

UID_MIN = 1000  # login.defs' default on Debian, Ubuntu and RHEL 7+
NOBODY = 65534
MAX_HOMES = 2000


def collect_home_directories(ctx: CollectContext) -> Collected:
    passwd = read_file(ctx, "/etc/passwd", 16 * 1024 * 1024)
    if passwd is None:
        raise CollectorError(ErrorKind.FAILED, "cannot read /etc/passwd: No such file or directory")
    issues: list[Issue] = []
    homes: list[dict[str, Any]] = []
    for name, fields in parse_colon_file(passwd).items():
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        uid, home, shell = int(fields[2]), fields[5], fields[6] or "/bin/sh"
        if uid < UID_MIN or uid == NOBODY or shell in NOLOGIN_SHELLS or not home.startswith("/"):
            continue
        item = _home(ctx, name, uid, home, issues)
        if item is not None and len(homes) < MAX_HOMES:
            homes.append(item)
    return Collected({"homes": homes}, tuple(issues))


def _home(
    ctx: CollectContext, user: str, uid: int, home: str, issues: list[Issue]
) -> dict[str, Any] | None:
    base: dict[str, Any] = {"user": clip(user, 256), "uid": uid, "home": clip(home, 4096)}
    try:
        info = os.stat(ctx.path(home))
    except FileNotFoundError:
        return {**base, "exists": False, "mode": None, "owner_matches": None}
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"{home}: {why}"))
        return None
    if not stat.S_ISDIR(info.st_mode):
        return {**base, "exists": False, "mode": None, "owner_matches": None}
    return {
        **base,
        "exists": True,
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "owner_matches": info.st_uid == uid,
        "group_writable": bool(info.st_mode & stat.S_IWGRP),
        "others_access": bool(info.st_mode & stat.S_IRWXO),
    }
