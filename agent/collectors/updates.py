"""The `updates` domain: patch status.

The package platform reports what its tools know (pending upgrades, held packages,
index age, last upgrade, automatic updates, reboot flags); this module adds what is
common to every Linux host: ages in days (computed by rules.derived), when
each pending update was first seen (from the agent's state, via `ctx.first_seen`), and
the running kernel against the newest installed one (`/lib/modules`).
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
    rfc3339_utc,
    with_derived_ages,
)
from agent.collectors.platforms import platform_for
from rules.facts import Domain

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
        item["pending_days"] = None  # rules.derived computes it from first_seen_at
    if len(pending) > MAX_PENDING:
        issues.append(Issue(ErrorKind.FAILED, f"{len(pending)} pending updates; list truncated"))
    data["pending"] = sorted(pending, key=lambda p: (p["name"], p["architecture"]))[:MAX_PENDING]
    data["pending_count"] = len(pending)
    data["security_count"] = sum(1 for p in pending if p["security"])
    # Ages come from rules.derived (below), the collector's own formula for stored facts.
    data["index_age_days"] = data["last_upgrade_days"] = None
    running = _running_kernel(ctx)
    newest = newest_kernel(_installed_kernels(ctx))
    data["running_kernel"] = running
    data["newest_installed_kernel"] = newest
    data["kernel_update_pending"] = (
        None if newest is None else kernel_key(newest) > kernel_key(running)
    )
    ordered = [
        "manager",
        "index_refreshed_at",
        "index_age_days",
        "pending",
        "pending_count",
        "security_count",
        "held",
        "last_upgrade_at",
        "last_upgrade_days",
        "automatic_security_updates",
        "reboot_required",
        "reboot_required_packages",
        "running_kernel",
        "newest_installed_kernel",
        "kernel_update_pending",
    ]
    return Collected(
        with_derived_ages(Domain.UPDATES, {key: data[key] for key in ordered}, now),
        tuple(issues),
    )


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _running_kernel(ctx: CollectContext) -> str:
    try:
        text = ctx.path("/proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        text = ""
    return clip(text or ctx.system.uname().release, 256)


def _installed_kernels(ctx: CollectContext) -> list[str]:
    """Kernel releases with modules installed: `/lib/modules/<release>` (both families)."""
    names: list[str] = []
    for directory in ("/lib/modules", "/usr/lib/modules"):
        try:
            names.extend(
                p.name
                for p in ctx.path(directory).iterdir()
                if (p / "modules.dep").exists()
                or (p / "vmlinuz").exists()
                or (p / "kernel").is_dir()
            )
        except OSError:
            continue
    return sorted(set(names))


def kernel_key(release: str) -> tuple[tuple[int, int | str], ...]:
    """Order kernel releases by their numeric parts: 6.1.0-28 > 6.1.0-9."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in _TOKEN.findall(release))


def newest_kernel(releases: list[str]) -> str | None:
    return clip(max(releases, key=kernel_key), 256) if releases else None
