"""The Debian Security Tracker's JSON (security-tracker.debian.org/tracker/data/json).

Shape: {source package: {CVE id: {"description", "scope", "releases": {codename:
{"status": resolved|open|undetermined, "repositories": {suite: version},
"fixed_version", "urgency", "nodsa", "nodsa_reason"}}}}}.

Mapping to advisories, per release:
- resolved with fixed_version "0": the release was never affected: nothing stored;
- resolved: FIXED below fixed_version; the archive's newest version (the maximum over
  `repositories`, which includes the -security suite) decides at matching time
  whether the fix is in the archive yet ("fix pending" otherwise);
- open: END_OF_LIFE when the urgency is "end-of-life", IGNORED when nodsa_reason is
  "ignored", else OPEN (a "postponed" no-DSA issue is flagged `no_dsa`: minor, fixed
  in a point release);
- undetermined: not stored (the tracker has not decided whether it is affected).
Pseudo ids (TEMP-...) are skipped: findings are per CVE.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from rules.language.versions import compare_versions
from server.vulns.errors import VulnDbError
from server.vulns.model import Advisory, Status, VendorSeverity

FORMAT = "debian-tracker-json"
FEED = "debian-tracker"
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
_STATUSES = frozenset({"resolved", "open", "undetermined"})
_URGENCY = {
    "high": VendorSeverity.HIGH,
    "medium": VendorSeverity.MEDIUM,
    "low": VendorSeverity.LOW,
    "unimportant": VendorSeverity.NEGLIGIBLE,
}


def looks_like(document: Any) -> bool:
    """Package names mapping to CVE-keyed objects with `releases`."""
    if not isinstance(document, Mapping) or not document:
        return False
    for entries in list(document.values())[:20]:
        if not isinstance(entries, Mapping):
            return False
        for entry in list(entries.values())[:5]:
            if isinstance(entry, Mapping) and "releases" in entry:
                return True
    return False


def parse(document: Any, where: str) -> tuple[Advisory, ...]:
    """Every advisory of the file; VulnDbError at the first malformed part."""
    if not isinstance(document, Mapping):
        raise VulnDbError(f"{where}: the Debian tracker file must be a JSON object")
    return tuple(_advisories(document, where))


def _advisories(document: Mapping[str, Any], where: str) -> Iterator[Advisory]:
    for package, entries in document.items():
        if not isinstance(entries, Mapping):
            raise VulnDbError(f"{where}: {package!r} is not an object of CVE entries")
        for cve, entry in entries.items():
            here = f"{where}: {package}/{cve}"
            releases = entry.get("releases") if isinstance(entry, Mapping) else None
            if not isinstance(releases, Mapping):
                raise VulnDbError(f"{here}: no `releases` object")
            if not CVE_ID.fullmatch(cve):
                continue
            for release, state in releases.items():
                advisory = _advisory(package, cve, release, state, f"{here}/{release}")
                if advisory is not None:
                    yield advisory


def _text(state: Mapping[str, Any], key: str, here: str) -> str:
    value = state.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise VulnDbError(f"{here}: `{key}` is not a string")
    return value


def _archive_version(state: Mapping[str, Any], here: str) -> str | None:
    repositories = state.get("repositories", {})
    if not isinstance(repositories, Mapping) or not all(
        isinstance(v, str) for v in repositories.values()
    ):
        raise VulnDbError(f"{here}: `repositories` is not an object of versions")
    newest: str | None = None
    for version in repositories.values():
        if newest is None or compare_versions(version, newest) > 0:
            newest = version
    return newest


def _advisory(package: str, cve: str, release: str, state: Any, here: str) -> Advisory | None:
    if not isinstance(state, Mapping):
        raise VulnDbError(f"{here}: not an object")
    status = _text(state, "status", here)
    if status not in _STATUSES:
        raise VulnDbError(f"{here}: unknown status {status!r}")
    urgency = _text(state, "urgency", here).rstrip("*")
    fixed = _text(state, "fixed_version", here)
    archive = _archive_version(state, here)
    severity = _URGENCY.get(urgency, VendorSeverity.UNKNOWN)
    if status == "undetermined" or (status == "resolved" and fixed == "0"):
        return None
    if status == "resolved":
        if not fixed:
            raise VulnDbError(f"{here}: resolved without a fixed_version")
        return Advisory(
            "debian",
            release,
            package,
            cve,
            status=Status.FIXED,
            fixed_version=fixed,
            archive_version=archive,
            severity=severity,
        )
    if urgency == "end-of-life":
        status_value = Status.END_OF_LIFE
    elif _text(state, "nodsa_reason", here) == "ignored":
        status_value = Status.IGNORED
    else:
        status_value = Status.OPEN
    return Advisory(
        "debian",
        release,
        package,
        cve,
        status=status_value,
        fixed_version=None,
        archive_version=archive,
        severity=severity,
        no_dsa="nodsa" in state,
    )
