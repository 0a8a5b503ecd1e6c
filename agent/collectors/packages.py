"""The `packages` domain: every installed package, from the host's package platform."""

from __future__ import annotations

from agent.collectors.base import CollectContext, Collected, ErrorKind, Issue
from agent.collectors.platforms import platform_for

MAX_PACKAGES = 50000  # the schema's bound


def collect_packages(ctx: CollectContext) -> Collected:
    platform = platform_for(ctx)
    items = sorted(platform.packages(ctx), key=lambda p: (p["name"], p["architecture"]))
    issues = []
    if len(items) > MAX_PACKAGES:
        issues.append(
            Issue(ErrorKind.FAILED, f"{len(items)} packages; only {MAX_PACKAGES} are reported")
        )
    return Collected(
        {"manager": platform.manager, "count": len(items), "items": items[:MAX_PACKAGES]},
        tuple(issues),
    )
