"""Ubuntu's VEX (OpenVEX) records (ubuntu-security-notices `vex/cve/*/CVE-*.json`):
what Ubuntu's OSV data cannot say.

Ubuntu's OSV lists an "ignored" package exactly like a "needed" one (affected, no
`fixed` event: Ubuntu's own OSV documentation), so from OSV alone a package the vendor
has given up on looks like one awaiting a fix. The VEX statements tell them apart:
`"status": "affected"` with the action statement "This package (for the given release)
is no longer supported. Please upgrade your system." is the tracker's "ignored (end of
standard support)": stored as END_OF_LIFE. Deferred and needs-triage packages are
`under_investigation`, fixed ones `fixed`, and OSV already says those (OPEN, FIXED):
they are not stored twice. Any other action statement is left to OSV (OPEN), never
guessed into "will not fix".

The rows are an overlay, stored under distro `ubuntu-vex`: matching.py applies them to
the OSV rows of the same release, source package and CVE, and only to OSV's OPEN ones
(a published fix always wins). Products are source purls
`pkg:deb/ubuntu/<source>@<version>?arch=source&distro=<codename>` (older files:
`?arch=src?distro=ubuntu/<codename>`); the codename becomes the release number OSV uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID
from server.vulns.model import Advisory, Status, VendorSeverity

FORMAT = "ubuntu-openvex"
FEED = "ubuntu-vex"
DISTRO = "ubuntu-vex"  # overlay rows, applied to distro `ubuntu` by matching
NO_LONGER_SUPPORTED = "is no longer supported"
# Ubuntu's codenames and the VERSION_ID (OSV's release) of each
RELEASES = {
    "trusty": "14.04", "xenial": "16.04", "bionic": "18.04", "focal": "20.04",
    "jammy": "22.04", "kinetic": "22.10", "lunar": "23.04", "mantic": "23.10",
    "noble": "24.04", "oracular": "24.10", "plucky": "25.04", "questing": "25.10",
}  # fmt: skip
_PURL = re.compile(r"pkg:deb/ubuntu/(?P<name>[^@?/]+)@(?P<version>[^?]+)\?(?P<query>.+)")


def looks_like(document: Any) -> bool:
    if not isinstance(document, Mapping):
        return False
    meta = document.get("metadata")
    return (
        isinstance(meta, Mapping)
        and str(meta.get("@context", "")).startswith("https://openvex.dev/ns/")
        and meta.get("author") == "Canonical Ltd."
    )


def parse(document: Mapping[str, Any], where: str) -> tuple[Advisory, ...]:
    statements = document.get("statements")
    if not isinstance(statements, list):
        raise VulnDbError(f"{where}: no `statements` list")
    found: dict[tuple[str, str, str], Advisory] = {}
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            raise VulnDbError(f"{where}: statements[{index}] is not an object")
        vulnerability = statement.get("vulnerability")
        cve = vulnerability.get("name") if isinstance(vulnerability, Mapping) else None
        if not isinstance(cve, str) or not CVE_ID.fullmatch(cve):
            raise VulnDbError(f"{where}: statements[{index}] names no CVE")
        action = str(statement.get("action_statement") or "")
        if statement.get("status") != "affected" or NO_LONGER_SUPPORTED not in action:
            continue  # fixed, deferred, triage, not affected: OSV's own statuses
        for release, source in _sources(statement.get("products"), f"{where}: [{index}]"):
            found[(release, source, cve)] = Advisory(
                DISTRO, release, source, cve, status=Status.END_OF_LIFE,
                fixed_version=None, archive_version=None, severity=VendorSeverity.UNKNOWN,
            )  # fmt: skip
    return tuple(found.values())


def _sources(products: Any, here: str) -> Iterator[tuple[str, str]]:
    """(release, source package) of each source purl; binaries are skipped."""
    if not isinstance(products, list):
        raise VulnDbError(f"{here} `products` is not a list")
    for product in products:
        purl = product.get("@id") if isinstance(product, Mapping) else None
        match = _PURL.fullmatch(purl) if isinstance(purl, str) else None
        if match is None:
            raise VulnDbError(f"{here} {purl!r} is not an Ubuntu package purl")
        query = dict(part.partition("=")[::2] for part in re.split(r"[?&]", match["query"]) if part)
        if query.get("arch") not in {"source", "src"}:
            continue
        release = RELEASES.get(query.get("distro", "").removeprefix("ubuntu/"))
        if release is not None:  # a release not listed: no overlay, OSV stands
            yield release, match["name"]
