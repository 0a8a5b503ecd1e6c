"""The `brute_force` domain: whether repeated failed logins get the source banned.

fail2ban (Debian/Ubuntu `fail2ban`, RHEL/Rocky from EPEL) bans an address after a few
failures in a jail; sshguard does the same for SSH without jails. Reported: which of
them run (process names under /proc: `fail2ban-server`, `sshguard`; null when no
process is visible at all) and the jails fail2ban's configuration enables, read as
fail2ban reads it: jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, later files
overriding a jail's `enabled`. The configuration needs no running server to read,
so it is known even when fail2ban stopped.

Configured is not active: a jail can be stopped at run time (`fail2ban-client stop
<jail>`), or configured after the server started and never reloaded. So when
fail2ban runs, its live state is asked too
(`fail2ban-client status`, through the command runner: root, as the agent runs) and
its jail list reported as `fail2ban_active_jails`; `[]` when it does not run, null
(with the reason in `errors`) when it runs but could not be asked.
"""

from __future__ import annotations

import configparser
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    list_dir,
    read_file_or_issue,
    run_tool,
    running_commands,
)

FAIL2BAN = "/etc/fail2ban"
FAIL2BAN_PROCESS = "fail2ban-server"
SSHGUARD_PROCESS = "sshguard"
MAX_JAILS = 256
FAIL2BAN_STATUS = ["fail2ban-client", "status"]
STATUS_TIMEOUT = 10.0  # seconds: the client asks a local socket and answers at once
_JAIL_LIST = "Jail list:"


def collect_brute_force(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    running = running_commands(ctx)
    if not running:
        issues.append(Issue(ErrorKind.FAILED, "running: unknown, no process visible under /proc"))
    installed = ctx.path(FAIL2BAN).is_dir()
    fail2ban_running = (FAIL2BAN_PROCESS in running) if running else None
    data: dict[str, Any] = {
        "fail2ban_installed": installed,
        "fail2ban_running": fail2ban_running,
        "fail2ban_jails": fail2ban_jails(ctx, issues) if installed else [],
        "fail2ban_active_jails": active_jails(ctx, fail2ban_running, issues),
        "sshguard_running": (SSHGUARD_PROCESS in running) if running else None,
    }
    return Collected(data, tuple(issues))


def active_jails(
    ctx: CollectContext, running: bool | None, issues: list[Issue]
) -> list[str] | None:
    """The jails the running server has active (its `Jail list`), in name order;
    `[]` when fail2ban does not run, None when that or the answer is unknown."""
    if running is None:
        return None  # the process list was unreadable: already reported
    if not running:
        return []
    try:
        output = run_tool(ctx, FAIL2BAN_STATUS, STATUS_TIMEOUT)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"fail2ban_active_jails: {e.reason}"))
        return None
    jails = parse_status(output)
    if jails is None:
        issues.append(
            Issue(
                ErrorKind.FAILED,
                clip(f"fail2ban_active_jails: no '{_JAIL_LIST}' line in: {output!r}", 1024),
            )
        )
    return jails


def parse_status(text: str) -> list[str] | None:
    """The jail names of `fail2ban-client status` ("`- Jail list:\tsshd, recidive"),
    sorted; None when the output has no jail list line."""
    for line in text.splitlines():
        _, found, names = line.partition(_JAIL_LIST)
        if found:
            jails = {name.strip() for name in names.split(",")} - {""}
            return sorted(jails)[:MAX_JAILS]
    return None


def fail2ban_jails(ctx: CollectContext, issues: list[Issue]) -> list[str]:
    """Names of the jails enabled, in name order."""
    files = [f"{FAIL2BAN}/jail.conf"]
    files += _in(ctx, "jail.d", ".conf", issues)
    files.append(f"{FAIL2BAN}/jail.local")
    files += _in(ctx, "jail.d", ".local", issues)
    enabled: dict[str, bool] = {}
    default = False
    for name in files:
        text = read_file_or_issue(ctx, name, issues, "fail2ban")
        if not text:
            continue
        default, found = parse_jails(text, default)
        enabled.update(found)
    return sorted(j for j, on in enabled.items() if on)[:MAX_JAILS]


def parse_jails(text: str, default: bool = False) -> tuple[bool, dict[str, bool]]:
    """([DEFAULT] enabled, {jail: enabled}) of one jail file; a jail without its own
    `enabled` takes the default (false in fail2ban's jail.conf)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    default = _truth(parser.defaults().get("enabled"), default)
    found: dict[str, bool] = {}
    for section in parser.sections():
        if section.lower() in ("includes", "include", "init", "definition"):
            continue
        found[section] = _truth(parser.get(section, "enabled", fallback=None), default)
    return default, found


def _truth(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "yes", "1", "on")


def _in(ctx: CollectContext, sub: str, suffix: str, issues: list[Issue]) -> list[str]:
    directory = f"{FAIL2BAN}/{sub}"
    return [
        f"{directory}/{n}"
        for n in list_dir(ctx, directory, issues, "fail2ban")
        if n.endswith(suffix)
    ]
