"""Debian and Ubuntu: installed packages from dpkg, pending updates from apt.

Nothing here changes the host or takes a lock: `dpkg-query` and `apt list` only read
the databases and the package lists as they are (no `apt-get update`), and the
remaining facts come from files (`/var/lib/apt/lists`, `/var/log/dpkg.log`,
`/run/reboot-required`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from agent.collectors.base import (
    CollectContext,
    CollectorError,
    Issue,
    clip,
    describe_os_error,
    read_file,
    read_file_or_issue,
    rfc3339_utc,
    run_tool,
)
from agent.collectors.platforms import aptlist
from agent.collectors.platforms.cache import CACHE, DEBIAN_INPUTS, DPKG_INPUTS

DPKG_QUERY = [
    "dpkg-query",
    "-W",
    # source:Version last, so output recorded before it was added still parses.
    "-f=${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${db:Status-Abbrev}"
    "\\t${source:Version}\\n",
]
# The pending-updates listing as it always ran (apt's cache built in memory), and the
# outputs cache's key for it whichever way apt runs (platforms.aptlist).
APT_LIST = aptlist.APT_LIST
APT_CONFIG = ["apt-config", "dump"]
DPKG_TIMEOUT = 20.0
APT_TIMEOUT = 45.0  # below the collector's budget, so the timeout names the command

# "name/suite[,suite...] candidate arch [upgradable from: current]"
_UPGRADABLE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<suites>\S+)\s+(?P<candidate>\S+)\s+(?P<arch>\S+)\s+"
    r"\[upgradable from: (?P<current>[^\]]+)\]"
)
# dpkg.log: "2026-11-27 20:48:17 upgrade libc-bin:amd64 2.36-9+deb12u13 2.36-9+deb12u14"
_DPKG_UPGRADE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) upgrade ")
_PERIODIC = re.compile(r'^APT::Periodic::Unattended-Upgrade\s+"([^"]*)";', re.MULTILINE)


class DebianPlatform:
    manager = "dpkg"

    def packages(self, ctx: CollectContext) -> list[dict[str, Any]]:
        rows = _dpkg_rows(ctx)
        return [
            {k: v for k, v in row.items() if not k.startswith("_")}
            for row in rows
            if row["_installed"]
        ]

    def updates(self, ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
        rows = _dpkg_rows(ctx)
        installed = {row["name"] for row in rows if row["_installed"]}
        held = sorted(row["name"] for row in rows if row["_want"] == "h")
        return {
            "manager": "apt",
            "index_refreshed_at": _lists_refreshed_at(ctx, issues),
            # Reused while the index, dpkg's status and apt's configuration are
            # unchanged: most of a steady-state cycle's CPU otherwise (platforms.cache).
            # Kept under APT_LIST's key whichever way apt ran: the answer is the same
            # (platforms.aptlist).
            "pending": parse_apt_upgradable(
                CACHE.produce(
                    ctx,
                    APT_LIST,
                    DEBIAN_INPUTS,
                    lambda: aptlist.upgradable_listing(ctx, APT_TIMEOUT),
                )
            ),
            "held": held,
            "last_upgrade_at": _last_upgrade(ctx, issues),
            "automatic_security_updates": _unattended(ctx, installed, issues),
            **_reboot_required(ctx, issues),
        }


def _dpkg_rows(ctx: CollectContext) -> list[dict[str, Any]]:
    """dpkg's rows: the listing reused while dpkg's status is unchanged (platforms.cache),
    its parse while the listing is the same text (both domains read it every cycle)."""
    return _parsed_once(CACHE.run(ctx, DPKG_QUERY, DPKG_TIMEOUT, DPKG_INPUTS))


# The last listing and its rows. The rows are shared by the callers, which only read
# them; a race between the two collectors' threads at worst parses twice.
_last_parse: tuple[str, list[dict[str, Any]]] = ("", [])


def _parsed_once(text: str) -> list[dict[str, Any]]:
    global _last_parse  # noqa: PLW0603 - a one-entry memo, keyed on the whole text
    last_text, rows = _last_parse
    if text and text == last_text:
        return rows
    rows = parse_dpkg_query(text)
    _last_parse = (text, rows)
    return rows


def parse_dpkg_query(text: str) -> list[dict[str, Any]]:
    """Rows of `DPKG_QUERY`'s output, with `_installed` and `_want` for the callers.

    Status-Abbrev is want, status, error flag ("ii ", "hi ", "rc "): a package is
    installed when its status is i (installed); "rc" (removed, config left) is not.
    """
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 5 or not parts[0]:
            continue
        name, version, arch, source, abbrev = parts[:5]
        # Vulnerability feeds are keyed by source package and source version (a binNMU
        # "+b1" binary keeps its source's version).
        source_version = parts[5] if len(parts) > 5 else ""
        rows.append(
            {
                "name": clip(name, 256),
                "version": clip(version, 256),
                "architecture": clip(arch, 64),
                "source": clip(source, 256) or None,
                "source_version": clip(source_version, 256) or None,
                "_installed": abbrev[1:2] == "i",
                "_want": abbrev[:1],
            }
        )
    return rows


def parse_apt_upgradable(text: str) -> list[dict[str, Any]]:
    """`apt list --upgradable`: one entry per upgradable package.

    A package is a security update when one of the suites it comes from is a
    security suite ("bookworm-security", "oldstable-security", "noble-security").
    """
    pending = []
    for line in text.splitlines():
        match = _UPGRADABLE.match(line.strip())
        if not match:
            continue  # "Listing...", blank lines
        suites = [s for s in match["suites"].split(",") if s and s != "now"]
        pending.append(
            {
                "name": clip(match["name"], 256),
                "current_version": clip(match["current"].strip(), 256),
                "candidate_version": clip(match["candidate"], 256),
                "architecture": clip(match["arch"], 64),
                "origin": clip(",".join(suites), 256) or None,
                "security": any(s.endswith("-security") or s.endswith("/updates") for s in suites),
            }
        )
    return pending


def _lists_refreshed_at(ctx: CollectContext, issues: list[Issue]) -> str | None:
    """When `apt-get update` last refreshed the lists, as well as the disk can tell.

    apt gives downloaded lists the server's modification time, and leaves an unchanged
    list alone, so the newest Release file can be older than the last update; apt's
    daily job stamps `update-success-stamp` and a changed list renames into the
    directory: the newest of the three is taken. No lists is null; lists that cannot be
    read are null too, with an entry saying why.
    """
    lists = "/var/lib/apt/lists"
    directory = ctx.path(lists)
    newest = 0.0
    try:
        for entry in directory.iterdir():
            if entry.name.endswith(("Release", "InRelease")):
                newest = max(newest, entry.stat().st_mtime)
        if newest:
            newest = max(newest, directory.stat().st_mtime)
    except FileNotFoundError:
        return None
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"index_refreshed_at: {lists}: {why}"))
        return None
    stamp_path = "/var/lib/apt/periodic/update-success-stamp"
    try:
        newest = max(newest, ctx.path(stamp_path).stat().st_mtime)
    except (FileNotFoundError, NotADirectoryError):
        pass  # apt's daily job is not in use
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"index_refreshed_at: {stamp_path}: {why}"))
    return rfc3339_utc(newest) if newest else None


def _last_upgrade(ctx: CollectContext, issues: list[Issue]) -> str | None:
    """The newest `upgrade` line of dpkg's log (its times are the host's local time)."""
    for name in ("/var/log/dpkg.log", "/var/log/dpkg.log.1"):
        try:
            text = read_file(ctx, name, 64 * 1024 * 1024)
        except CollectorError as e:
            # Not the rotated log instead: its upgrades are older than the unread ones.
            issues.append(Issue(e.kind, f"last_upgrade_at: {e.reason}"))
            return None
        if not text:
            continue
        stamps = [m.group(1) for m in map(_DPKG_UPGRADE.match, text.splitlines()) if m]
        if stamps:
            return rfc3339_utc(datetime.strptime(max(stamps), "%Y-%m-%d %H:%M:%S").astimezone())
    return None


def _unattended(ctx: CollectContext, installed: set[str], issues: list[Issue]) -> dict[str, Any]:
    if "unattended-upgrades" not in installed:
        return {"enabled": False, "mechanism": None}
    try:
        dump = run_tool(ctx, APT_CONFIG, DPKG_TIMEOUT)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"automatic_security_updates: {e.reason}"))
        return {"enabled": None, "mechanism": "unattended-upgrades"}
    values = _PERIODIC.findall(dump)
    # apt.conf semantics: the last assignment wins; "1" (days) or more means on.
    enabled = bool(values) and values[-1].strip() not in ("", "0", "false")
    return {"enabled": enabled, "mechanism": "unattended-upgrades"}


def _reboot_required(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    """/run/reboot-required is written by packages (kernel, libc) that need a reboot."""
    flag = ctx.path("/run/reboot-required")
    try:
        required: bool | None = flag.exists() or ctx.path("/var/run/reboot-required").exists()
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"reboot_required: /run/reboot-required: {why}"))
        required = None
    pkgs_text = None
    for name in ("/run/reboot-required.pkgs", "/var/run/reboot-required.pkgs"):
        pkgs_text = read_file_or_issue(ctx, name, issues, "reboot_required_packages")
        if pkgs_text:
            break
    packages = sorted({line.strip() for line in (pkgs_text or "").splitlines() if line.strip()})
    return {"reboot_required": required, "reboot_required_packages": packages[:1000]}
