"""The RHEL family (RHEL, Rocky, AlmaLinux, CentOS Stream, Oracle Linux, Fedora):
installed packages from rpm, pending updates from dnf (or yum on older releases).

dnf and yum run with `--cacheonly` (`-C`): they read the metadata already on disk and
never download it, so the collection neither touches the network nor refreshes
anything; without a cache they fail, and that becomes an `errors` entry.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from agent.collectors.base import (
    CollectContext,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    describe_os_error,
    read_file,
    read_file_or_issue,
    rfc3339_utc,
    run_tool,
)
from agent.collectors.platforms.cache import CACHE, RHEL_INPUTS

RPM_QUERY = [
    "rpm",
    "-qa",
    "--qf",
    # MODULARITYLABEL last, so output recorded before it was added still parses.
    "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}"
    "\\t%{MODULARITYLABEL}\\n",
]
RPM_TIMEOUT = 30.0
DNF_TIMEOUT = 40.0
_ARCHES = ("x86_64", "noarch", "aarch64", "i686", "ppc64le", "s390x", "src")
# updateinfo list: "RHSA-2024:3339 Important/Sec. glibc-2.34-100.el9_4.2.x86_64"
_ADVISORY = re.compile(r"^\S+\s+(?P<type>\S+)\s+(?P<nevra>\S+)$")
# dnf history list: "    12 | update -y       | 2024-05-20 10:01 | Upgrade        |   35"
_HISTORY = re.compile(r"^\s*\d+\s*\|[^|]*\|\s*(\d{4}-\d\d-\d\d \d\d:\d\d)\s*\|\s*([^|]*?)\s*\|")


class RhelPlatform:
    manager = "rpm"

    def packages(self, ctx: CollectContext) -> list[dict[str, Any]]:
        return parse_rpm_query(run_tool(ctx, RPM_QUERY, RPM_TIMEOUT))

    def updates(self, ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
        tool = _tool(ctx)
        installed = {p["name"] + "." + p["architecture"]: p for p in self.packages(ctx)}
        # check-update exits 100 when updates are available, 0 when none.
        # Both reused while the rpm database and dnf's cache are unchanged (platforms.cache).
        listing = CACHE.run(
            ctx, [tool, "-q", "-C", "check-update"], DNF_TIMEOUT, RHEL_INPUTS, ok_codes=(0, 100)
        )
        try:
            advisories = CACHE.run(
                ctx,
                [tool, "-q", "-C", "updateinfo", "list", "--security"],
                DNF_TIMEOUT,
                RHEL_INPUTS,
            )
        except CollectorError as e:
            issues.append(Issue(e.kind, f"security classification: {e.reason}"))
            advisories = None
        pending = parse_check_update(listing, installed, parse_security_names(advisories))
        return {
            "manager": tool,
            "index_refreshed_at": _cache_refreshed_at(ctx, tool, issues),
            "pending": pending,
            "held": _versionlocks(ctx, issues),
            "last_upgrade_at": _last_upgrade(ctx, tool, issues),
            "automatic_security_updates": _automatic(ctx, tool, issues),
            **_needs_restarting(ctx, issues),
        }


def _tool(ctx: CollectContext) -> str:
    for candidate in ("dnf", "yum"):
        for directory in ("/usr/bin", "/bin"):
            if ctx.path(f"{directory}/{candidate}").exists():
                return candidate
    raise CollectorError(ErrorKind.UNSUPPORTED, "neither dnf nor yum is installed")


def parse_rpm_query(text: str) -> list[dict[str, Any]]:
    packages = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[0] or parts[0] == "gpg-pubkey":
            continue  # imported signing keys are rpm entries, not packages
        name, version, arch, srpm = parts[:4]
        module = parts[4] if len(parts) > 4 and parts[4] != "(none)" else ""
        packages.append(
            {
                "name": clip(name, 256),
                "version": clip(version, 256),
                "architecture": clip(arch, 64),
                "source": _srpm_name(srpm),
                # The SRPM file name carries no epoch: the binary's epoch is the source's.
                "source_version": _srpm_version(srpm, version),
                "module": clip(module, 256) or None,
            }
        )
    return packages


def _srpm_name(srpm: str) -> str | None:
    """ "openssl-3.0.7-27.el9.src.rpm" -> "openssl"; "(none)" -> None."""
    if not srpm.endswith(".src.rpm"):
        return None
    parts = srpm[: -len(".src.rpm")].rsplit("-", 2)
    return clip(parts[0], 256) if len(parts) == 3 else None


def _srpm_version(srpm: str, version: str) -> str | None:
    """ "openssl-3.0.7-27.el9.src.rpm", "1:3.0.7-27.el9.0.1" -> "1:3.0.7-27.el9"."""
    if not srpm.endswith(".src.rpm"):
        return None
    parts = srpm[: -len(".src.rpm")].rsplit("-", 2)
    if len(parts) != 3:
        return None
    epoch, sep, _ = version.partition(":")
    prefix = f"{epoch}:" if sep else ""
    return clip(f"{prefix}{parts[1]}-{parts[2]}", 256)


def _split_name_arch(value: str) -> tuple[str, str]:
    name, _, arch = value.rpartition(".")
    return (name, arch) if name and arch in _ARCHES else (value, "")


def parse_security_names(text: str | None) -> set[str] | None:
    """`name.arch` of every package with a security advisory; None when unknown."""
    if text is None:
        return None
    names = set()
    for line in text.splitlines():
        match = _ADVISORY.match(line.strip())
        if not match:
            continue
        # NEVRA: name-[epoch:]version-release.arch; name may contain dashes.
        nevra = match["nevra"]
        base, arch = _split_name_arch(nevra)
        name = base.rsplit("-", 2)[0]
        names.add(f"{name}.{arch}")
    return names


def parse_check_update(
    text: str, installed: dict[str, dict[str, Any]], security: set[str] | None
) -> list[dict[str, Any]]:
    """`dnf check-update`: "name.arch  [epoch:]version-release  repo" lines.

    Long names wrap onto a second line, which dnf indents; "Obsoleting Packages"
    ends the list of updates.
    """
    tokens: list[str] = []
    for line in text.splitlines():
        if line.startswith("Obsoleting"):
            break
        if not line.strip() or line.startswith(("Last metadata", "Security:")):
            continue
        tokens.extend(line.split())
    pending = []
    for i in range(0, len(tokens) - 2, 3):
        name_arch, candidate, repo = tokens[i : i + 3]
        name, arch = _split_name_arch(name_arch)
        current = installed.get(name_arch, {}).get("version")
        pending.append(
            {
                "name": clip(name, 256),
                "current_version": clip(current or "", 256),
                "candidate_version": clip(candidate, 256),
                "architecture": clip(arch, 64),
                "origin": clip(repo, 256),
                "security": bool(security and name_arch in security),
            }
        )
    return pending


def _cache_refreshed_at(ctx: CollectContext, tool: str, issues: list[Issue]) -> str | None:
    """The newest repomd.xml in the cache: when the metadata was last downloaded."""
    cache = ctx.path(f"/var/cache/{tool}")
    patterns = ("*/repodata/repomd.xml", "*/*/*/repodata/repomd.xml")
    newest = 0.0
    try:
        for pattern in patterns:
            for path in cache.glob(pattern):
                newest = max(newest, path.stat().st_mtime)
    except FileNotFoundError:
        return None  # removed between the glob and the stat: dnf is cleaning its cache
    except OSError as e:
        kind, why = describe_os_error(e)
        issues.append(Issue(kind, f"index_refreshed_at: /var/cache/{tool}: {why}"))
        return None
    return rfc3339_utc(newest) if newest else None


def _versionlocks(ctx: CollectContext, issues: list[Issue]) -> list[str]:
    locks = []
    for name in ("/etc/dnf/plugins/versionlock.list", "/etc/yum/pluginconf.d/versionlock.list"):
        text = read_file_or_issue(ctx, name, issues, "held") or ""
        for line in text.splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                # "nginx-1:1.20.1-14.el9.*" -> "nginx"
                spec = entry.lstrip("!").split(":", 1)[0]
                locks.append(clip(spec.rsplit("-", 1)[0] if ":" in entry else spec, 256))
    return sorted(set(locks))


def _last_upgrade(ctx: CollectContext, tool: str, issues: list[Issue]) -> str | None:
    try:
        text = run_tool(ctx, [tool, "-q", "-C", "history", "list"], DNF_TIMEOUT)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"last_upgrade_at: {e.reason}"))
        return None
    stamps = []
    for line in text.splitlines():
        match = _HISTORY.match(line)
        # Actions: "Upgrade", "Install, Upgrade", or the letter "U" when several.
        if match and ("Upgrade" in match.group(2) or "U" in match.group(2).split(", ")):
            stamps.append(match.group(1))
    if not stamps:
        return None
    return rfc3339_utc(datetime.strptime(max(stamps), "%Y-%m-%d %H:%M").astimezone())


def _automatic(ctx: CollectContext, tool: str, issues: list[Issue]) -> dict[str, Any]:
    """dnf-automatic (or yum-cron) installed with apply_updates on."""
    conf_path, mechanism = (
        ("/etc/dnf/automatic.conf", "dnf-automatic")
        if tool == "dnf"
        else ("/etc/yum/yum-cron.conf", "yum-cron")
    )
    try:
        conf = read_file(ctx, conf_path)
    except CollectorError as e:
        # Installed (the file is there) but unreadable: whether it applies is unknown.
        issues.append(Issue(e.kind, f"automatic_security_updates: {e.reason}"))
        return {"enabled": None, "mechanism": mechanism}
    if conf is None:
        return {"enabled": False, "mechanism": None}
    apply = re.search(r"^\s*apply_updates\s*=\s*(\S+)", conf, re.MULTILINE)
    timers = ("dnf-automatic.timer", "dnf-automatic-install.timer")
    timer_on = any(
        ctx.path(f"/etc/systemd/system/timers.target.wants/{t}").exists() for t in timers
    )
    install_timer = ctx.path(
        "/etc/systemd/system/timers.target.wants/dnf-automatic-install.timer"
    ).exists()
    applies = bool(apply and apply.group(1).lower() in ("yes", "true", "1")) or install_timer
    return {"enabled": applies and (timer_on or tool == "yum"), "mechanism": mechanism}


def _needs_restarting(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    """`needs-restarting -r` (dnf-utils / yum-utils): exit 1 when a reboot is needed."""
    try:
        result = ctx.run(["needs-restarting", "-r"], 30.0)
    except Exception as e:  # noqa: BLE001 - missing tool or timeout: unknown, not fatal
        issues.append(Issue(ErrorKind.UNSUPPORTED, f"reboot_required: {e}"))
        return {"reboot_required": None, "reboot_required_packages": []}
    if result.returncode not in (0, 1):
        issues.append(Issue(ErrorKind.FAILED, f"needs-restarting -r exited {result.returncode}"))
        return {"reboot_required": None, "reboot_required_packages": []}
    # "  * kernel" lines list what was updated since boot.
    packages = sorted(
        {
            clip(line.strip()[2:].strip(), 256)
            for line in result.stdout.splitlines()
            if line.strip().startswith("* ") and line.strip()[2:].strip()
        }
    )
    return {"reboot_required": result.returncode == 1, "reboot_required_packages": packages}
