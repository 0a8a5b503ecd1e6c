"""The `mounts` domain: how the directories every user may write to are mounted.

/tmp, /var/tmp and /dev/shm are where an attacker without privileges drops tools; a
separate file system mounted `nodev,nosuid,noexec` keeps device files, set-user-ID
programs and executables from working there, and a full /tmp from filling /. Also
/var, /var/log, /var/log/audit and /home, which the CIS benchmarks want separate.

Read from /proc/self/mounts (what `findmnt` shows, without the tool): the last
mount of a target wins, as a later mount hides an earlier one. Octal escapes
(`\\040` for a space) are decoded.
"""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.base import CollectContext, Collected, CollectorError, ErrorKind, read_file

# Mount points reported on, not temporary files the agent writes.
TARGETS = (
    "/",
    "/tmp",  # noqa: S108
    "/var",
    "/var/tmp",  # noqa: S108
    "/var/log",
    "/var/log/audit",
    "/home",
    "/dev/shm",  # noqa: S108
)
MOUNTS = "/proc/self/mounts"
_OCTAL = re.compile(r"\\([0-7]{3})")


def collect_mounts(ctx: CollectContext) -> Collected:
    text = read_file(ctx, MOUNTS)
    if text is None:
        raise CollectorError(ErrorKind.FAILED, f"{MOUNTS} does not exist: /proc is not mounted")
    return Collected({"filesystems": parse_mounts(text)}, ())


def parse_mounts(text: str) -> list[dict[str, Any]]:
    """The mounts of `TARGETS` in a /proc/mounts text, one per target (the last)."""
    found: dict[str, dict[str, Any]] = {}
    for raw in text.splitlines():
        words = raw.split()
        if len(words) < 4:
            continue
        target = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), words[1])
        if target in TARGETS:
            found[target] = {
                "target": target,
                "source": _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), words[0])[:1024],
                "fstype": words[2][:64],
                "options": sorted(set(words[3].split(",")))[:64],
            }
    return [found[t] for t in TARGETS if t in found]
