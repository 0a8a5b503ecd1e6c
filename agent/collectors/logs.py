"""The `logging` domain: journald persistence and limits, the syslog daemon, and the
rotation (hence retention) of the main system log.

journald: /etc/systemd/journald.conf, then drop-ins in journald.conf.d directories
(later files win, as systemd applies them), and whether systemd-journald runs at all
(a persistent configuration writes nothing when the daemon is not running; null when
no process is visible under /proc). Rotation: the logrotate stanza naming
/var/log/syslog (Debian) or /var/log/messages (RHEL), with logrotate.conf's global
`rotate` and period as its defaults; retention in days is rotate x period.

The journal's real retention: `journalctl --list-boots --output=json` gives each
boot's first entry (microseconds since the epoch), so the oldest is what the journal
still holds and `retained_days` its age now. MaxRetentionSec alone only caps it (an
unset cap keeps nothing longer when SystemMaxUse fills), hence the measured age. Read
only as root: another user's journalctl sees only its own journal, so its answer is
unknown, not short. No journal files at all: nothing retained (0 days).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    host_has,
    list_dir,
    read_file_or_issue,
    rfc3339_utc,
    run_tool,
    running_commands,
)

JOURNALD_FILES = ("/etc/systemd/journald.conf",)
JOURNALD_DIRS = (
    "/usr/lib/systemd/journald.conf.d",
    "/run/systemd/journald.conf.d",
    "/etc/systemd/journald.conf.d",
)
SYSLOG_DAEMONS = (
    ("rsyslog", ("/usr/sbin/rsyslogd",), "rsyslogd"),
    ("syslog-ng", ("/usr/sbin/syslog-ng",), "syslog-ng"),
)
MAIN_LOGS = ("/var/log/syslog", "/var/log/messages")
JOURNALD_PROCESS = "systemd-journal"  # comm is cut at 15 characters
LIST_BOOTS = ["journalctl", "--list-boots", "--output=json", "--no-pager"]
LIST_BOOTS_TIMEOUT = 20.0
PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
_SPAN_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
    "month": 2629800,
    "months": 2629800,
    "M": 2629800,
    "y": 31557600,
    "year": 31557600,
    "years": 31557600,
}


def collect_logging(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    data = {
        "journald": _journald(ctx, issues),
        "syslog": _syslog(ctx),
        "rotation": _rotation(ctx, issues),
    }
    return Collected(data, tuple(issues))


def time_span_seconds(value: str) -> int | None:
    """systemd.time(7) spans ("1month", "2w 3d", "3600"); None when unparsable."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    for number, unit in parts:
        factor = _SPAN_UNITS.get(unit) or _SPAN_UNITS.get(unit.lower())
        if factor is None:
            return None
        total += float(number) * factor
    return int(total)


def _journald(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    files = list(JOURNALD_FILES)
    for directory in JOURNALD_DIRS:
        names = list_dir(ctx, directory, issues, "journald")
        files += [f"{directory}/{name}" for name in names if name.endswith(".conf")]
    values: dict[str, str] = {}
    for name in files:
        # A file that cannot be read still leaves the others' settings: the result is
        # reported, with the unread file as an entry (its settings may be missing).
        text = read_file_or_issue(ctx, name, issues, "journald") or ""
        section = None
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line
            elif section == "[Journal]" and "=" in line and not line.startswith(("#", ";")):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    storage = values.get("Storage", "auto").lower() or "auto"
    journal_dir = ctx.path("/var/log/journal").is_dir()
    persistent = storage == "persistent" or (storage == "auto" and journal_dir)
    retention = values.get("MaxRetentionSec")
    return {
        "storage": storage,
        "persistent": persistent,
        "running": _journald_running(ctx, issues),
        "system_max_use": values.get("SystemMaxUse") or None,
        "max_retention_sec": time_span_seconds(retention) if retention else None,
        **_journal_age(ctx, issues),
    }


def parse_boots(text: str, now: datetime) -> tuple[str | None, float]:
    """(oldest entry, its age in days) from `journalctl --list-boots --output=json`;
    no output (no journal files) is (None, 0.0). Raises ValueError on anything else."""
    if not text.strip():
        return None, 0.0
    boots = json.loads(text)
    if not isinstance(boots, list):
        raise TypeError("not a list of boots")
    if not boots:
        return None, 0.0
    firsts = [b.get("first_entry") if isinstance(b, dict) else None for b in boots]
    stamps = [f for f in firsts if isinstance(f, int) and f > 0]
    if len(stamps) != len(firsts):
        raise ValueError(f"first_entry not a timestamp in {boots[:3]!r}"[:256])
    oldest = min(stamps) / 1e6
    return rfc3339_utc(int(oldest)), max(0.0, round((now.timestamp() - oldest) / 86400, 1))


def _journal_age(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    unknown: dict[str, Any] = {"oldest_entry_at": None, "retained_days": None}
    if not ctx.system.is_privileged():
        issues.append(
            Issue(
                ErrorKind.PERMISSION,
                "journald: retained_days: journalctl shows another user only its own "
                "journal; run as root",
            )
        )
        return unknown
    try:
        text = run_tool(ctx, LIST_BOOTS, LIST_BOOTS_TIMEOUT)
        oldest, days = parse_boots(text, ctx.now())
    except CollectorError as e:
        issues.append(Issue(e.kind, f"journald: retained_days: {e.reason}"))
        return unknown
    except (ValueError, KeyError, TypeError) as e:
        issues.append(Issue(ErrorKind.FAILED, f"journald: retained_days: {e}"))
        return unknown
    return {"oldest_entry_at": oldest, "retained_days": days}


def _journald_running(ctx: CollectContext, issues: list[Issue]) -> bool | None:
    running = running_commands(ctx)
    if not running:
        # Not even this agent's own process was seen: /proc is not the host's.
        issues.append(
            Issue(ErrorKind.FAILED, "journald: running: unknown, no process visible under /proc")
        )
        return None
    return JOURNALD_PROCESS in running


def _syslog(ctx: CollectContext) -> dict[str, Any]:
    running = running_commands(ctx)
    for name, _binaries, process in SYSLOG_DAEMONS:
        if process in running:
            return {"daemon": name, "running": True}
    for name, binaries, _process in SYSLOG_DAEMONS:
        if host_has(ctx, *binaries):
            return {"daemon": name, "running": False}
    return {"daemon": None, "running": None}


def parse_logrotate(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Global directives and, per log path, the directives of its stanza."""
    global_values: dict[str, str] = {}
    stanzas: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    paths: list[str] = []
    pending: list[str] = []
    in_script = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if in_script:
            in_script = line != "endscript"
            continue
        if line.endswith("{"):
            paths = pending + line[:-1].split()
            pending = []
            current = {}
            continue
        if line == "}":
            for path in paths:
                stanzas[path] = current or {}
            current = None
            continue
        words = line.split()
        if words[0] in ("postrotate", "prerotate", "firstaction", "lastaction", "preremove"):
            in_script = True
            continue
        if current is None and words[0].startswith("/"):
            pending += words
            continue
        target = current if current is not None else global_values
        if words[0] in PERIOD_DAYS:
            target["period"] = words[0]
        elif words[0] == "rotate" and len(words) > 1:
            target["rotate"] = words[1]
        elif words[0] == "maxage" and len(words) > 1:
            target["maxage"] = words[1]
    return global_values, stanzas


def _rotation(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    main = read_file_or_issue(ctx, "/etc/logrotate.conf", issues, "rotation") or ""
    global_values, stanzas = parse_logrotate(main)
    for directory in ("/etc/logrotate.d",):
        for name in list_dir(ctx, directory, issues, "rotation"):
            text = read_file_or_issue(ctx, f"{directory}/{name}", issues, "rotation")
            stanzas.update(parse_logrotate(text or "")[1])
    for log in MAIN_LOGS:
        if log in stanzas:
            merged = {**global_values, **stanzas[log]}
            rotate = int(merged["rotate"]) if merged.get("rotate", "").isdigit() else None
            period = merged.get("period")
            retention = rotate * PERIOD_DAYS[period] if rotate is not None and period else None
            return {"file": log, "rotate": rotate, "period": period, "retention_days": retention}
    return {"file": None, "rotate": None, "period": None, "retention_days": None}
