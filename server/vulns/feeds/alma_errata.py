"""AlmaLinux's errata JSON (`https://errata.almalinux.org/<N>/errata.json`): the same
advisories as the repositories' updateinfo, as a list of objects.

Each security advisory (`updateinfo_id` ALSA-..., `type` security) names its CVEs in
`references` (`type` cve) and its binary packages in `pkglist.packages` (name, epoch,
version, release, arch). Keys, fixed versions, releases and "the newest build wins"
are updateinfo.py's, so a host is matched the same way from either file. A package
without `arch` is refused (it cannot be matched by name and arch). A module build
(`module` in its release) is NOT stored: this file does not name its stream in a form
checked here, and storing it under the plain name would let it "fix" a non-module
package; import the repositories' updateinfo (whose collections name the stream) for
module streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID
from server.vulns.feeds.updateinfo import DISTROS, fixed_package, keep
from server.vulns.model import Advisory, Status, VendorSeverity

FORMAT = "alma-errata-json"
FEED = DISTROS["ALSA"][1]  # one feed with Alma's updateinfo: the same data
_SEVERITY = {
    "critical": VendorSeverity.CRITICAL,
    "important": VendorSeverity.HIGH,
    "moderate": VendorSeverity.MEDIUM,
    "low": VendorSeverity.LOW,
}


def looks_like(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and isinstance(document[0], Mapping)
        and str(document[0].get("updateinfo_id", "")).startswith(("ALSA-", "ALBA-", "ALEA-"))
    )


def parse(document: list[Any], where: str) -> tuple[Advisory, ...]:
    advisories: dict[tuple[str, str, str], Advisory] = {}
    for index, advisory in enumerate(document):
        if not isinstance(advisory, Mapping):
            raise VulnDbError(f"{where}: [{index}] is not an object")
        update_id = str(advisory.get("updateinfo_id", ""))
        if not update_id.startswith(("ALSA-", "ALBA-", "ALEA-")):
            raise VulnDbError(f"{where}: [{index}] is not an AlmaLinux advisory")
        if advisory.get("type") != "security":
            continue  # bug fix and enhancement advisories name no CVE
        references = advisory.get("references")
        cves = sorted(
            {
                str(ref.get("id"))
                for ref in (references if isinstance(references, list) else ())
                if isinstance(ref, Mapping)
                and ref.get("type") == "cve"
                and CVE_ID.fullmatch(str(ref.get("id", "")))
            }
        )
        severity = _SEVERITY.get(str(advisory.get("severity", "")).lower(), VendorSeverity.UNKNOWN)
        pkglist = advisory.get("pkglist")
        packages = pkglist.get("packages") if isinstance(pkglist, Mapping) else None
        if not isinstance(packages, list):
            raise VulnDbError(f"{where}: {update_id} has no pkglist.packages list")
        for package in packages:
            if not isinstance(package, Mapping):
                raise VulnDbError(f"{where}: {update_id}: a package is not an object")
            if "module" in str(package.get("release", "")):
                continue  # stream unknown here: never stored as a non-module fix
            key, fixed, release = fixed_package(package, "", f"{where}: {update_id}")
            for cve in cves:
                keep(
                    advisories,
                    Advisory(
                        "almalinux", release, key, cve, status=Status.FIXED,
                        fixed_version=fixed, archive_version=fixed, severity=severity,
                    ),
                )  # fmt: skip
    return tuple(advisories.values())
