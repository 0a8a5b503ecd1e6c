"""Package-manager platforms: the one interface callers use for packages and updates.

`packages` and `updates` never test for a distribution themselves: they ask
`platform_for(ctx)` for a `PackagePlatform` and call it. Debian/Ubuntu (dpkg + apt) and
the RHEL family (rpm + dnf or yum) implement it here; Windows (or SUSE) becomes one
more implementation and one more line in `platform_for`, callers unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.collectors.base import CollectContext, CollectorError, ErrorKind, Issue, read_file
from agent.collectors.osrelease import family_of, id_like, parse_os_release
from agent.collectors.platforms.debian import DebianPlatform
from agent.collectors.platforms.rhel import RhelPlatform


class PackagePlatform(Protocol):
    """How one family of systems lists installed packages and pending updates."""

    manager: str  # the installed-package database: "dpkg", "rpm"

    def packages(self, ctx: CollectContext) -> list[dict[str, Any]]:
        """Installed packages: `{name, version, architecture, source}` each."""
        ...

    def updates(self, ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
        """The manager-specific part of the `updates` domain: `manager`,
        `index_refreshed_at`, `pending` (without first-seen ages), `held`,
        `last_upgrade_at`, `automatic_security_updates`, `reboot_required`,
        `reboot_required_packages`. Partial failures go to `issues`."""
        ...


def platform_for(ctx: CollectContext) -> PackagePlatform:
    """The platform of the host under `ctx.root`, from its os-release family."""
    values: dict[str, str] | None = None
    unread: CollectorError | None = None
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = read_file(ctx, candidate)
        except CollectorError as e:
            # Denied or failed: the other file may still say; if neither does, this
            # error (kind permission when denied) is why, not "unsupported linux".
            unread = unread or e
            continue
        if text is not None:
            values = parse_os_release(text)
            break
    if values is None:
        if unread is not None:
            raise unread
        values = {}
    family = family_of(values.get("ID", "linux"), id_like(values))
    if family == "debian":
        return DebianPlatform()
    if family == "rhel":
        return RhelPlatform()
    raise CollectorError(
        ErrorKind.UNSUPPORTED, f"no package platform for the {family!r} distribution family"
    )
