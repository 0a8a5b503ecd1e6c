"""The `updates` domain: patch status.

The package platform reports what its tools know (pending upgrades, held packages,
index age, last upgrade, automatic updates, reboot flags); this module adds what is
common to every Linux host: when each pending update was first seen (from the agent's
state, via `ctx.first_seen`) and since when the agent has been watching
(`pending_watched_since`: an update first seen at that instant was pending before the
agent looked, for how long no package manager records), and the running kernel
against the newest installed one (`/lib/modules`). The ages in days (`index_age_days`,
`last_upgrade_days`, `pending_days`) are not computed here: rules.derived adds them to
the document from these timestamps, the one formula the collector also applies to
stored facts.
"""

from __future__ import annotations

import re
from datetime import datetime

from agent.collectors.base import (
    CollectContext,
    Collected,
    ErrorKind,
    Issue,
    clip,
    list_dir,
    read_file_or_issue,
    rfc3339_utc,
)
from agent.collectors.platforms import platform_for

MAX_PENDING = 20000
_TOKEN = re.compile(r"\d+|[A-Za-z]+")


def collect_updates(ctx: CollectContext) -> Collected:
    now = ctx.now()
    issues: list[Issue] = []
    data = platform_for(ctx).updates(ctx, issues)
    pending = data["pending"]
    for item in pending:
        key = f"{item['name']}:{item['architecture']}={item['candidate_version']}"
        first = ctx.first_seen.get(key)
        first_seen = _parse(first) if first else None
        if first_seen is None or first_seen > now:
            first_seen = now
        item["first_seen_at"] = rfc3339_utc(first_seen)
    watched = _parse(ctx.pending_watched_since) if ctx.pending_watched_since else None
    if watched is None or watched > now:
        watched = now  # no state, or a clock set back: watching starts now
    data["pending_watched_since"] = rfc3339_utc(watched)
    if len(pending) > MAX_PENDING:
        issues.append(Issue(ErrorKind.FAILED, f"{len(pending)} pending updates; list truncated"))
    data["pending"] = sorted(pending, key=lambda p: (p["name"], p["architecture"]))[:MAX_PENDING]
    data["pending_count"] = len(pending)
    data["security_count"] = sum(1 for p in pending if p["security"])
    running = _running_kernel(ctx, issues)
    newest = newest_kernel(_installed_kernels(ctx, issues))
    data["running_kernel"] = running
    data["newest_installed_kernel"] = newest
    data["kernel_update_pending"] = (
        None if newest is None else kernel_key(newest) > kernel_key(running)
    )
    ordered = [
        "manager",
        "index_refreshed_at",
        "pending",
        "pending_watched_since",
        "pending_count",
        "security_count",
        "held",
        "last_upgrade_at",
        "automatic_security_updates",
        "reboot_required",
        "reboot_required_packages",
        "running_kernel",
        "newest_installed_kernel",
        "kernel_update_pending",
    ]
    return Collected({key: data[key] for key in ordered}, tuple(issues))


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _running_kernel(ctx: CollectContext, issues: list[Issue]) -> str:
    text = read_file_or_issue(ctx, "/proc/sys/kernel/osrelease", issues, "running_kernel")
    return clip((text or "").strip() or ctx.system.uname().release, 256)


def _installed_kernels(ctx: CollectContext, issues: list[Issue]) -> list[str]:
    """Kernel releases with modules installed: `/lib/modules/<release>` (both families)."""
    names: list[str] = []
    for directory in ("/lib/modules", "/usr/lib/modules"):
        for name in list_dir(ctx, directory, issues, "newest_installed_kernel"):
            release = ctx.path(f"{directory}/{name}")
            if (
                (release / "modules.dep").exists()
                or (release / "vmlinuz").exists()
                or (release / "kernel").is_dir()
            ):
                names.append(name)
    return sorted(set(names))


def kernel_key(release: str) -> tuple[tuple[int, int | str], ...]:
    """Order kernel releases by their numeric parts: 6.1.0-28 > 6.1.0-9."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in _TOKEN.findall(release))


def newest_kernel(releases: list[str]) -> str | None:
    return clip(max(releases, key=kernel_key), 256) if releases else None
