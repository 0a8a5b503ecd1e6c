"""The `time` domain: is the clock synchronized, by which service, in which zone.

`timedatectl show` answers with systemd; without it (containers, other inits) the
service is found from the running processes and installed daemons, and the
synchronization state is unknown (null).
"""

from __future__ import annotations

from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    host_has,
    run_tool,
    running_commands,
)
from agent.collectors.inventory import timezone_of
from agent.collectors.services import systemd_booted

# (service name reported, process names, binaries)
SERVICES = (
    ("chrony", ("chronyd",), ("/usr/sbin/chronyd",)),
    (
        "systemd-timesyncd",
        ("systemd-timesyn",),
        ("/lib/systemd/systemd-timesyncd", "/usr/lib/systemd/systemd-timesyncd"),
    ),
    ("ntpsec", ("ntpd",), ("/usr/sbin/ntpd",)),
    ("openntpd", ("ntpd",), ("/usr/sbin/openntpd",)),
)


def parse_timedatectl_show(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value == "yes"


def collect_time(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    values: dict[str, str] = {}
    if not systemd_booted(ctx):
        issues.append(
            Issue(ErrorKind.UNSUPPORTED, "synchronized: unknown, the host is not running systemd")
        )
    else:
        try:
            values = parse_timedatectl_show(run_tool(ctx, ["timedatectl", "show"], 10.0))
        except CollectorError as e:
            issues.append(Issue(e.kind, f"timedatectl: {e.reason}"))
    running = running_commands(ctx)
    service = next((n for n, procs, _b in SERVICES if any(p in running for p in procs)), None)
    active: bool | None = True if service else None
    if service is None:
        service = next((n for n, _p, binaries in SERVICES if host_has(ctx, *binaries)), None)
        # Installed but not seen running (or not visible): timedatectl's NTP says
        # whether a synchronization service is enabled, when it could be asked.
        active = _bool(values.get("NTP")) if values else (False if service else None)
    data: dict[str, Any] = {
        "synchronized": _bool(values.get("NTPSynchronized")),
        "ntp_service": service,
        "ntp_active": active,
        "timezone": values.get("Timezone") or timezone_of(ctx, issues),
    }
    return Collected(data, tuple(issues))
