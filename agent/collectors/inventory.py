"""Host inventory beyond identity: virtualization, timezone, filesystems, disks.

(Uptime is not read here: rules.derived computes `uptime_seconds` from `boot_time`.)

Mounts come from `/proc/self/mounts` and disks from `/sys/block` under `ctx.root`; the
space figures need statvfs(2) on the live mount point, which goes through the system
facade so tests can supply them.
"""

from __future__ import annotations

import os
from typing import Any

from agent.collectors.base import (
    CollectContext,
    CollectorError,
    Issue,
    clip,
    list_dir,
    read_file,
    read_file_or_issue,
    run_tool,
)

# Kernel and pseudo filesystems: nothing to fill, no options a rule cares about.
# tmpfs stays: /tmp and /dev/shm mount options (noexec, nosuid) are audit points.
PSEUDO_FS = frozenset(
    [
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "securityfs",
        "debugfs",
        "tracefs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "hugetlbfs",
        "autofs",
        "binfmt_misc",
        "nsfs",
        "efivarfs",
        "rpc_pipefs",
        "selinuxfs",
        "ramfs",
        "devtmpfs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "squashfs",
    ]
)
MAX_FILESYSTEMS = 512
MAX_DISKS = 512


def inventory(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    return {
        "virtualization": _virtualization(ctx, issues),
        "timezone": timezone_of(ctx, issues),
        "filesystems": _filesystems(ctx, issues),
        "disks": _disks(ctx, issues),
    }


def _virtualization(ctx: CollectContext, issues: list[Issue]) -> str | None:
    # Exits 1 and prints "none" on bare metal.
    try:
        out = run_tool(ctx, ["systemd-detect-virt"], 5.0, ok_codes=(0, 1)).strip()
    except CollectorError as e:
        issues.append(Issue(e.kind, f"virtualization: {e.reason}"))
        return None
    return clip(out, 64) or None


def timezone_of(ctx: CollectContext, issues: list[Issue]) -> str | None:
    """The IANA zone: the /etc/localtime symlink target, else /etc/timezone (Debian).

    An unreadable /etc/timezone is null with an entry in `issues`, not "no zone set".
    """
    try:
        target = os.readlink(ctx.path("/etc/localtime"))
    except OSError:
        target = ""  # not a symlink (a copied zone file) or absent: /etc/timezone says
    if "zoneinfo/" in target:
        return clip(target.split("zoneinfo/", 1)[1], 64)
    zone = (read_file_or_issue(ctx, "/etc/timezone", issues, "timezone") or "").strip()
    return clip(zone, 64) if zone else None


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _filesystems(ctx: CollectContext, issues: list[Issue]) -> list[dict[str, Any]]:
    try:
        text = read_file(ctx, "/proc/self/mounts") or read_file(ctx, "/proc/mounts")
    except CollectorError as e:
        issues.append(Issue(e.kind, f"filesystems: {e.reason}"))
        return []
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] in PSEUDO_FS:
            continue
        device, mountpoint, fstype, options = _unescape(parts[0]), _unescape(parts[1]), *parts[2:4]
        if mountpoint in seen:
            continue  # over-mounted: the last mount is the visible one, keep the first row
        seen.add(mountpoint)
        usage = ctx.system.disk_usage(mountpoint)
        total, used, free = usage if usage else (None, None, None)
        result.append(
            {
                "device": clip(device, 1024),
                "mountpoint": clip(mountpoint, 4096),
                "fstype": clip(fstype, 64),
                "total_bytes": total,
                "used_bytes": used,
                "free_bytes": free,
                # Like df: used / (used + available to ordinary users).
                "used_ratio": round(used / (used + free), 4)
                if used is not None and free is not None and used + free > 0
                else None,
                "options": [clip(o, 256) for o in options.split(",")][:64],
            }
        )
    return result[:MAX_FILESYSTEMS]


def _sys_value(ctx: CollectContext, absolute: str, issues: list[Issue]) -> str | None:
    value = (read_file_or_issue(ctx, absolute, issues, "disks", 4096) or "").strip()
    return value or None


def _disks(ctx: CollectContext, issues: list[Issue]) -> list[dict[str, Any]]:
    names = list_dir(ctx, "/sys/block", issues, "disks")
    disks = []
    for name in names:
        if name.startswith(("loop", "ram", "zram")):
            continue
        sectors = _sys_value(ctx, f"/sys/block/{name}/size", issues)
        rotational = _sys_value(ctx, f"/sys/block/{name}/queue/rotational", issues)
        model = _sys_value(ctx, f"/sys/block/{name}/device/model", issues)
        disks.append(
            {
                "name": clip(name, 64),
                # /sys/block/*/size counts 512-byte sectors whatever the device's own.
                "size_bytes": int(sectors) * 512 if sectors and sectors.isdigit() else None,
                "rotational": None if rotational not in ("0", "1") else rotational == "1",
                "model": clip(model, 256) if model else None,
            }
        )
    return disks[:MAX_DISKS]
