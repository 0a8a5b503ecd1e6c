"""The `file_integrity` domain: whether AIDE is initialised, scheduled and checking.

An installed AIDE protects nothing until `aide --init` wrote its database, a database
protects nothing unless a check runs periodically, and a check protects nothing if
nobody reads what it found. Read here, without running AIDE (a check reads every
file it watches: minutes of I/O):

- the database: `database_in` (AIDE >= 0.17) or `database` (older) in
  /etc/aide/aide.conf (Debian, Ubuntu) or /etc/aide.conf (RHEL family), with
  `@@define` macros expanded; without one, the distribution's default
  (/var/lib/aide/aide.db, /var/lib/aide/aide.db.gz). Its modification time is when
  it was (re)initialised.
- the schedule: an enabled systemd timer (Debian's dailyaidecheck.timer, the CIS
  aidecheck.timer), /etc/cron.{hourly,daily,weekly,monthly}/aide (except Debian's
  script on a systemd host: it exits at once and leaves the check to the timer), or
  a crontab line running `aide --check` or dailyaidecheck.
- the last check: the newest report log (`report_url=file:` in the configuration,
  else /var/log/aide/aide.log), its modification time, and its outcome from the
  lines AIDE and Debian's dailyaidecheck write.

A path the agent may not read is an `errors` entry and the fact it decides is null,
never false: "no database" and "cannot see the database" are different findings.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    Issue,
    describe_os_error,
    host_has,
    list_dir,
    read_file_or_issue,
    rfc3339_utc,
)

BINARIES = ("/usr/bin/aide", "/usr/sbin/aide")
# configuration file -> the database its distribution uses when it names none
CONFIGS = (
    ("/etc/aide/aide.conf", "/var/lib/aide/aide.db"),
    ("/etc/aide.conf", "/var/lib/aide/aide.db.gz"),
)
DEFAULT_LOG = "/var/log/aide/aide.log"
TIMERS = ("dailyaidecheck.timer", "aidecheck.timer", "aide-check.timer", "aide.timer")
TIMER_DIRS = (
    "/etc/systemd/system/timers.target.wants",
    "/etc/systemd/system/multi-user.target.wants",
)
CRON_PERIODS = ("hourly", "daily", "weekly", "monthly")
CRONTABS = ("/etc/crontab", "/var/spool/cron/root", "/var/spool/cron/crontabs/root")
CRON_DIR = "/etc/cron.d"
MAX_LOG_BYTES = 1024 * 1024

_DEFINE = re.compile(r"^@@define\s+(\w+)\s+(.*?)\s*$")
_MACRO = re.compile(r"@@\{(\w+)\}")
_SETTING = re.compile(r"^(database_in|database|report_url)\s*=\s*(\S+)\s*$")
_CHECK_LINE = re.compile(r"\baide\b[^\n]*(--check|\s-C\b)|dailyaidecheck")
# Debian's dailyaidecheck: "AIDE returned with a zero exit code. No changes detected!"
# or "AIDE returned with exit code 4. Changed entries detected!" (1-7: changes).
_DEBIAN_ZERO = re.compile(r"^AIDE returned with a zero exit code", re.MULTILINE)
_DEBIAN_CODE = re.compile(r"^AIDE returned with exit code (\d+)\.", re.MULTILINE)
# AIDE's own report (what report_url=file: writes on RHEL).
_AIDE_CLEAN = re.compile(r"AIDE found NO differences between database and filesystem")
_AIDE_CHANGES = re.compile(r"AIDE found differences between database and filesystem")
_DEBIAN_FAILED = re.compile(r"^\s*\**\s*(database not present|terminated)", re.MULTILINE)


class Outcome(StrEnum):
    NO_CHANGES = "no_changes"
    CHANGES = "changes"
    FAILED = "failed"  # the check ran and did not finish (no database, bad config...)
    UNKNOWN = "unknown"  # the log says neither


def collect_file_integrity(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    installed = host_has(ctx, *BINARIES)
    config, settings, readable = _configuration(ctx, issues)
    # An unreadable configuration may name any database: unknown, not the default.
    database = _database(settings, config) if readable else None
    exists, updated = _stat(ctx, database, "database_exists", issues) if database else (None, None)
    aide: dict[str, Any] = {
        "installed": installed,
        "config": config,
        "database": database,
        "database_exists": exists,
        "database_updated_at": updated,
    }
    schedules, complete = _schedules(ctx, issues)
    aide["schedules"] = schedules
    aide["scheduled"] = True if schedules else (False if complete else None)
    aide.update(_last_check(ctx, settings, issues))
    return Collected({"aide": aide}, tuple(issues))


def _configuration(
    ctx: CollectContext, issues: list[Issue]
) -> tuple[str | None, dict[str, list[str]], bool]:
    """The configuration file (None: none exists), its settings (macros expanded) and
    whether it could be read (when not, the issue is recorded)."""
    for path, _ in CONFIGS:
        before = len(issues)
        text = read_file_or_issue(ctx, path, issues, "database_exists")
        if text is not None:
            return path, _settings(text), True
        if len(issues) > before:
            return path, {}, False
    return None, {}, True


def _settings(text: str) -> dict[str, list[str]]:
    macros: dict[str, str] = {}
    found: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if match := _DEFINE.match(line):
            macros[match[1]] = match[2]
            continue
        if match := _SETTING.match(line):
            value = _MACRO.sub(lambda m: macros.get(m[1], m[0]), match[2])
            found.setdefault(match[1], []).append(value)
    return found


def _file_url(url: str) -> str | None:
    """The path of a `file:` URL (AIDE also takes `file://path`), None for others."""
    if not url.startswith("file:"):
        return None
    path = url.removeprefix("file:")
    path = "/" + path.lstrip("/") if path.startswith("//") else path
    return path if path.startswith("/") else None


def _database(settings: dict[str, list[str]], config: str | None) -> str | None:
    for key in ("database_in", "database"):
        for url in settings.get(key, ()):
            return _file_url(url)  # the last word: a non-file URL leaves it unknown
    return dict(CONFIGS).get(config) if config else None


def _stat(
    ctx: CollectContext, absolute: str, label: str, issues: list[Issue]
) -> tuple[bool | None, str | None]:
    try:
        info = os.stat(ctx.path(absolute))
    except (FileNotFoundError, NotADirectoryError):
        return False, None
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"{label}: {absolute}: {why}"))
        return None, None
    return True, rfc3339_utc(info.st_mtime)


def _schedules(ctx: CollectContext, issues: list[Issue]) -> tuple[list[str], bool]:
    """Where a periodic check is scheduled, and whether every place could be read."""
    before = len(issues)
    found: list[str] = []
    for directory in TIMER_DIRS:
        for name in TIMERS:
            if ctx.path(f"{directory}/{name}").exists():
                found.append(f"systemd:{name}")
    systemd_running = ctx.path("/run/systemd/system").is_dir()
    for period in CRON_PERIODS:
        absolute = f"/etc/cron.{period}/aide"
        text = read_file_or_issue(ctx, absolute, issues, "scheduled")
        # Debian's script exits at once when systemd runs (the timer does the work).
        if text is not None and not (systemd_running and "/run/systemd/system" in text):
            found.append(absolute)
    tables = [*CRONTABS, *(f"{CRON_DIR}/{n}" for n in list_dir(ctx, CRON_DIR, issues, "scheduled"))]
    for absolute in tables:
        text = read_file_or_issue(ctx, absolute, issues, "scheduled")
        if text and any(
            _CHECK_LINE.search(line) and not line.lstrip().startswith("#")
            for line in text.splitlines()
        ):
            found.append(absolute)
    return sorted(set(found)), len(issues) == before


def _last_check(
    ctx: CollectContext, settings: dict[str, list[str]], issues: list[Issue]
) -> dict[str, Any]:
    """`checked` (a report log exists) and `last_check` (the newest one) or null."""
    logs = [p for url in settings.get("report_url", ()) if (p := _file_url(url))]
    newest: tuple[float, str] | None = None
    unknown = False
    for absolute in dict.fromkeys([*logs, DEFAULT_LOG]):
        try:
            mtime = os.stat(ctx.path(absolute)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            kind, why = describe_os_error(e)
            issues.append(Issue(kind, f"last_check: {absolute}: {why}"))
            unknown = True
            continue
        if newest is None or mtime > newest[0]:
            newest = (mtime, absolute)
    if newest is None:
        return {"checked": None if unknown else False, "last_check": None}
    mtime, absolute = newest
    text = read_file_or_issue(ctx, absolute, issues, "last_check.outcome", MAX_LOG_BYTES)
    return {
        "checked": True,
        "last_check": {
            "log": absolute,
            "finished_at": rfc3339_utc(mtime),
            "outcome": None if text is None else str(outcome_of(text)),
        },
    }


def outcome_of(text: str) -> Outcome:
    """What a check's log says it found."""
    if _AIDE_CHANGES.search(text):
        return Outcome.CHANGES
    if _AIDE_CLEAN.search(text) or _DEBIAN_ZERO.search(text):
        return Outcome.NO_CHANGES
    if match := _DEBIAN_CODE.search(text):
        return Outcome.CHANGES if 1 <= int(match[1]) <= 7 else Outcome.FAILED
    if _DEBIAN_FAILED.search(text):
        return Outcome.FAILED
    return Outcome.UNKNOWN
