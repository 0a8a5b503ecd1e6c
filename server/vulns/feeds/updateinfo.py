"""Rocky Linux and AlmaLinux `updateinfo.xml` (a repository's `repodata/*-updateinfo.xml.gz`).

Each security `<update>` (id `RLSA-...` for Rocky, `ALSA-...` for Alma) names its CVEs in
`<references>` (`type="cve"`) and the BINARY packages that fix them in `<pkglist>`
(name, epoch, version, release, arch, src). The repository publishes the packages of
an update with it, so every fix read here is in the archive by construction
(`archive_version` = `fixed_version`). Advisories are keyed by binary `name.arch`
(a `noarch` package by `name.noarch`), and a package of a module collection by
`name.arch@module:stream`, so that a module build only ever matches hosts running
that stream (matching.py builds the same keys from the host's rpm facts). Several
updates fixing one CVE in one package: the newest build wins (a respin after an
incomplete fix must not leave the host "fixed" by the first one).

The release is the `el<N>` dist tag of the fixed package (`27.el9_4`,
`module+el8.9.0+...`). The file is XML from outside: a DOCTYPE (and so any entity
declaration) is refused before parsing, the rest is read by expat, which resolves no
external entity.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID
from server.vulns.model import Advisory, Status, VendorSeverity
from server.vulns.versions import compare_rpm

FORMAT = "updateinfo-xml"
# advisory id prefix -> (os-release ID, feed name)
DISTROS = {"RLSA": ("rocky", "rocky-updateinfo"), "ALSA": ("almalinux", "alma-updateinfo")}
_DIST_TAG = re.compile(r"(?:^|[._+])el(\d+)")  # 27.el9_4, module+el9.2.0, module_el8.6.0
_SEVERITY = {
    "critical": VendorSeverity.CRITICAL,
    "important": VendorSeverity.HIGH,
    "moderate": VendorSeverity.MEDIUM,
    "low": VendorSeverity.LOW,
}


def looks_like(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:512]
    return head.startswith("<") and "<updates" in head


def feed_of(text: str, where: str) -> tuple[str, tuple[Advisory, ...]]:
    """The feed name (rocky-updateinfo, alma-updateinfo) and the advisories of one
    file: a file mixing Rocky and Alma advisories is refused."""
    advisories: dict[tuple[str, str, str], Advisory] = {}
    feeds: set[str] = set()
    for update_id, update in _security_updates(text, where):
        distro, feed = DISTROS[update_id[:4]]
        feeds.add(feed)
        cves = sorted(
            {
                str(ref.get("id"))
                for ref in update.iter("reference")
                if ref.get("type") == "cve" and CVE_ID.fullmatch(str(ref.get("id", "")))
            }
        )
        severity = _SEVERITY.get((update.findtext("severity") or "").strip().lower())
        for package_key, fixed, release in _packages(update, update_id, where):
            for cve in cves:
                keep(
                    advisories,
                    Advisory(
                        distro, release, package_key, cve, status=Status.FIXED,
                        fixed_version=fixed, archive_version=fixed,
                        severity=severity or VendorSeverity.UNKNOWN,
                    ),
                )  # fmt: skip
    if len(feeds) > 1:
        raise VulnDbError(f"{where}: mixes Rocky (RLSA) and Alma (ALSA) advisories")
    if not feeds:
        raise VulnDbError(f"{where}: updateinfo without any RLSA or ALSA security update")
    return feeds.pop(), tuple(advisories.values())


def _security_updates(text: str, where: str) -> Iterator[tuple[str, ET.Element]]:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise VulnDbError(f"{where}: updateinfo with a DOCTYPE or entities is refused")
    try:
        # DOCTYPE refused just above, so no entity can be declared (defusedxml's
        # guard, stricter); expat resolves no external entity on its own
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as e:
        # a truncated download ends here: refused whole
        raise VulnDbError(f"{where}: not valid XML ({e})") from e
    if root.tag != "updates":
        raise VulnDbError(f"{where}: the root element is <{root.tag}>, not <updates>")
    for index, update in enumerate(root.findall("update")):
        update_id = (update.findtext("id") or "").strip()
        if not update_id:
            raise VulnDbError(f"{where}: update {index} has no <id>")
        if update.get("type") != "security":
            continue  # bugfix and enhancement updates name no CVE
        if update_id[:4] not in DISTROS:
            raise VulnDbError(f"{where}: {update_id!r} is neither an RLSA nor an ALSA advisory")
        yield update_id, update


def _packages(update: ET.Element, update_id: str, where: str) -> Iterator[tuple[str, str, str]]:
    """(store key, fixed epoch:version-release, release) of each package of an update."""
    for collection in update.iter("collection"):
        module = collection.find("module")
        stream = ""
        if module is not None:
            stream = f"@{module.get('name', '')}:{module.get('stream', '')}"
        for package in collection.findall("package"):
            yield fixed_package(
                {key: package.get(key) for key in ("name", "arch", "epoch", "version", "release")},
                stream,
                f"{where}: {update_id}",
            )


def fixed_package(package: Mapping[str, object], stream: str, here: str) -> tuple[str, str, str]:
    """(store key `name.arch[@module:stream]`, fixed epoch:version-release, release) of
    one package of an update (updateinfo XML or Alma's errata JSON)."""
    name, arch = package.get("name"), package.get("arch")
    version, release = package.get("version"), package.get("release")
    if not all(isinstance(v, str) and v for v in (name, arch, version, release)):
        raise VulnDbError(f"{here}: a package lacks name, arch, version or release")
    tag = _DIST_TAG.search(str(release))
    if tag is None:
        raise VulnDbError(f"{here}: {name}-{version}-{release} has no el<N> dist tag")
    epoch = package.get("epoch") or "0"
    return f"{name}.{arch}{stream}", f"{epoch}:{version}-{release}", tag[1]


def keep(advisories: dict[tuple[str, str, str], Advisory], advisory: Advisory) -> None:
    key = (advisory.release, advisory.package, advisory.cve)
    known = advisories.get(key)
    if (
        known is not None
        and compare_rpm(known.fixed_version or "", advisory.fixed_version or "") >= 0
    ):
        return
    advisories[key] = advisory
