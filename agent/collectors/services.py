"""The `services` domain: systemd units (services, sockets, timers) with their load,
activity and enablement, from `systemctl` (read-only queries)."""

from __future__ import annotations

from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    run_tool,
)

TYPES = "--type=service,socket,timer"
LIST_UNITS = ["systemctl", "list-units", "--all", TYPES, "--no-legend", "--no-pager", "--plain"]
LIST_FILES = ["systemctl", "list-unit-files", TYPES, "--no-legend", "--no-pager"]
TIMEOUT = 15.0
MAX_UNITS = 10000


def systemd_booted(ctx: CollectContext) -> bool:
    """sd_booted(3): systemd is the running init when /run/systemd/system exists."""
    return ctx.path("/run/systemd/system").is_dir()


def collect_services(ctx: CollectContext) -> Collected:
    if not systemd_booted(ctx):
        return Collected(
            {"manager": None, "units": []},
            (Issue(ErrorKind.UNSUPPORTED, "the host is not running systemd"),),
        )
    issues: list[Issue] = []
    states: dict[str, str] = {}
    try:
        states = parse_unit_files(run_tool(ctx, LIST_FILES, TIMEOUT))
    except CollectorError as e:
        issues.append(Issue(e.kind, f"unit_file_state: {e.reason}"))
    units = parse_list_units(run_tool(ctx, LIST_UNITS, TIMEOUT), states)
    return Collected({"manager": "systemd", "units": units[:MAX_UNITS]}, tuple(issues))


def parse_unit_files(text: str) -> dict[str, str]:
    """`list-unit-files`: "UNIT STATE [PRESET]" per line."""
    states = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


def parse_list_units(text: str, states: dict[str, str]) -> list[dict[str, Any]]:
    """`list-units --plain`: "UNIT LOAD ACTIVE SUB DESCRIPTION..." per line."""
    units = []
    for line in text.splitlines():
        parts = line.strip().lstrip("●* ").split(None, 4)
        if len(parts) < 4:
            continue
        name, load, active, sub = parts[:4]
        units.append(
            {
                "name": clip(name, 256),
                "load_state": clip(load, 32),
                "active_state": clip(active, 32),
                "sub_state": clip(sub, 32),
                "unit_file_state": clip(states[name], 32) if name in states else None,
                "description": clip(parts[4], 1024) if len(parts) > 4 else None,
            }
        )
    return sorted(units, key=lambda u: u["name"])
