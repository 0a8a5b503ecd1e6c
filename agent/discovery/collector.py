"""The `discovery` domain as a collector produces it, when `agent.discovery.enabled` is
set: the configured (else attached) subnets swept with the configured ports, at most
every `interval_seconds` (agent/discovery/schedule.py), the last sweep reported in
between."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agent.collectors.base import CollectContext, Collected
from agent.collectors.failures import ErrorKind, Issue
from agent.discovery.config import DiscoveryConfig
from agent.discovery.scan import run_scan
from agent.discovery.schedule import scheduled_sweep
from agent.discovery.targets import attached_subnets, make_plan


def discovery_collector(
    settings: DiscoveryConfig,
    state_dir: Path | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[CollectContext], Collected]:
    """The collector function. Refusals and scan failures raise (the document builder
    turns them into an `errors` entry of the domain); a sweep cut by a cap is reported
    with an issue, and its `open_ports` null."""

    def collect(_ctx: CollectContext) -> Collected:
        sweep = scheduled_sweep(
            settings,
            state_dir,
            lambda: run_scan(make_plan((), settings, attached_subnets())),
            clock(),
        )
        issues = (Issue(ErrorKind.FAILED, sweep.incomplete),) if sweep.incomplete else ()
        return Collected(sweep.domain, issues)

    return collect
