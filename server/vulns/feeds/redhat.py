"""Red Hat's CSAF VEX files (one per CVE, `security.access.redhat.com/data/csaf/v2/vex`).

Read per vulnerability from `product_status` and `remediations`, for the main stream
of each RHEL major release only (products whose CPE is
`cpe:/{o,a}:redhat:enterprise_linux:N::<repo>`; EUS/AUS/E4S streams are skipped):
- `fixed` "<product>:<name>-<epoch>:<version>-<release>.src": FIXED below that
  source RPM's `epoch:version-release` (an RHSA is published with the update: in
  the archive); several builds of one source: the newest;
- `known_affected` "<product>:<name>" with a `no_fix_planned` remediation: IGNORED
  ("will not fix"), "Out of support scope": END_OF_LIFE, else OPEN;
- severity: the `impact` threat (Critical, Important→high, Moderate→medium, Low).
Module streams: a fixed module build
"<product>:<module>:<stream>:<version>:<context>:<srpm>.src" and an affected
"<product>:<module>:<stream>/<name>" are stored as `<name>@<module>:<stream>`, the key
rpm_keys.py gives a host's package of that stream: a module build is never judged by
the non-module build's fix, nor the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID
from server.vulns.model import Advisory, Status, VendorSeverity
from server.vulns.versions import compare_rpm

FORMAT = "redhat-csaf-vex"
FEED = "redhat-csaf"
_MAIN_CPE = re.compile(r"cpe:/[oa]:redhat:enterprise_linux:(\d+)::\w+")
_MODULE_BUILD = re.compile(r"(?P<module>[^:/]+):(?P<stream>[^:/]+):\d+:[^:/]+:(?P<srpm>.+)")
_SRPM = re.compile(r"(?P<name>.+)-(?:(?P<epoch>\d+):)?(?P<version>[^-:]+)-(?P<release>[^-]+)\.src")
_IMPACT = {
    "critical": VendorSeverity.CRITICAL,
    "important": VendorSeverity.HIGH,
    "moderate": VendorSeverity.MEDIUM,
    "low": VendorSeverity.LOW,
}


def looks_like(document: Any) -> bool:
    meta = document.get("document") if isinstance(document, Mapping) else None
    return isinstance(meta, Mapping) and meta.get("category") == "csaf_vex"


def _main_products(tree: Any) -> dict[str, str]:
    """product id -> RHEL major release, for main-stream products."""
    found: dict[str, str] = {}
    stack = [tree] if isinstance(tree, Mapping) else []
    while stack:
        node = stack.pop()
        product = node.get("product")
        if isinstance(product, Mapping):
            helper = product.get("product_identification_helper")
            cpe = helper.get("cpe") if isinstance(helper, Mapping) else None
            match = _MAIN_CPE.fullmatch(cpe) if isinstance(cpe, str) else None
            if match and isinstance(product.get("product_id"), str):
                found[product["product_id"]] = match[1]
        branches = node.get("branches")
        if isinstance(branches, list):
            stack.extend(b for b in branches if isinstance(b, Mapping))
    return found


def parse(document: Mapping[str, Any], where: str) -> tuple[Advisory, ...]:
    products = _main_products(document.get("product_tree"))
    vulnerabilities = document.get("vulnerabilities")
    if not isinstance(vulnerabilities, list):
        raise VulnDbError(f"{where}: no `vulnerabilities` list")
    advisories: dict[tuple[str, str, str], Advisory] = {}
    for index, vulnerability in enumerate(vulnerabilities):
        if not isinstance(vulnerability, Mapping) or not CVE_ID.fullmatch(
            str(vulnerability.get("cve", ""))
        ):
            raise VulnDbError(f"{where}: vulnerabilities[{index}] has no CVE id")
        cve = str(vulnerability["cve"])
        status = vulnerability.get("product_status") or {}
        severity = _severity(vulnerability.get("threats"))
        for product_id in status.get("fixed", []) if isinstance(status, Mapping) else []:
            _fixed(advisories, products, str(product_id), cve, severity)
        remedies = _remedies(vulnerability.get("remediations"))
        for product_id in status.get("known_affected", []) if isinstance(status, Mapping) else []:
            _affected(advisories, products, str(product_id), cve, severity, remedies=remedies)
    return tuple(advisories.values())


def _severity(threats: Any) -> VendorSeverity:
    for threat in threats if isinstance(threats, list) else ():
        if isinstance(threat, Mapping) and threat.get("category") == "impact":
            return _IMPACT.get(str(threat.get("details", "")).lower(), VendorSeverity.UNKNOWN)
    return VendorSeverity.UNKNOWN


def _remedies(remediations: Any) -> dict[str, Status]:
    """product id -> IGNORED / END_OF_LIFE from the non-fix remediations."""
    found: dict[str, Status] = {}
    for remedy in remediations if isinstance(remediations, list) else ():
        if not isinstance(remedy, Mapping) or remedy.get("category") != "no_fix_planned":
            continue
        details = str(remedy.get("details", "")).lower()
        status = Status.END_OF_LIFE if "out of support scope" in details else Status.IGNORED
        for product_id in remedy.get("product_ids", []):
            found[str(product_id)] = status
    return found


def _fixed(
    advisories: dict[tuple[str, str, str], Advisory],
    products: Mapping[str, str],
    product_id: str,
    cve: str,
    severity: VendorSeverity,
) -> None:
    product, _, component = product_id.partition(":")
    release = products.get(product)
    stream = ""
    module = _MODULE_BUILD.fullmatch(component)
    if module is not None:
        component, stream = module["srpm"], f"@{module['module']}:{module['stream']}"
    match = _SRPM.fullmatch(component)
    if release is None or match is None:
        return  # another stream (EUS...) or a binary RPM: not matched
    fixed = f"{match['epoch'] or 0}:{match['version']}-{match['release']}"
    key = (release, f"{match['name']}{stream}", cve)
    known = advisories.get(key)
    if known is not None and known.fixed_version and compare_rpm(known.fixed_version, fixed) >= 0:
        return
    advisories[key] = Advisory(
        "rhel", release, key[1], cve, status=Status.FIXED, fixed_version=fixed,
        archive_version=fixed, severity=severity,
    )  # fmt: skip


def _affected(
    advisories: dict[tuple[str, str, str], Advisory],
    products: Mapping[str, str],
    product_id: str,
    cve: str,
    severity: VendorSeverity,
    *,
    remedies: Mapping[str, Status],
) -> None:
    # "red_hat_enterprise_linux_9:openssl": the release from the product name;
    # "red_hat_enterprise_linux_8:nodejs:16/nodejs": nodejs of the nodejs:16 stream
    product, _, package = product_id.partition(":")
    release = products.get(product) or _release_of(product)
    stream, slash, name = package.rpartition("/")
    if slash and stream.count(":") == 1:
        package = f"{name}@{stream}"
    if release is None or not package or ":" in package.partition("@")[0]:
        return
    key = (release, package, cve)
    if key in advisories:
        return  # a fixed build of the main stream wins
    advisories[key] = Advisory(
        "rhel", release, package, cve, status=remedies.get(product_id, Status.OPEN),
        fixed_version=None, archive_version=None, severity=severity,
    )  # fmt: skip


def _release_of(product: str) -> str | None:
    match = re.fullmatch(r"red_hat_enterprise_linux_(\d+)", product)
    return match[1] if match else None
