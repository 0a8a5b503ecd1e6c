"""Ubuntu's OSV records (ubuntu-security-notices `osv/cve/*/UBUNTU-CVE-*.json`, or the
OSV `Ubuntu/all.zip`): one record per CVE, `affected[]` per (release, source package).

- `package.ecosystem` "Ubuntu:24.04:LTS" is release 24.04 (os-release VERSION_ID);
  "Ubuntu:Pro:18.04:LTS" (and other `Pro` ecosystems) are fixes only in Ubuntu Pro
  (ESM): the fix is not in the public archive, so `fix_pending` with `pro_only`;
- a `fixed` event in an ECOSYSTEM range: FIXED below it (Ubuntu publishes the record
  with the update, so the fix is in the archive); no `fixed` event: OPEN;
- severity: the `Ubuntu` severity entry (negligible, low, medium, high, critical).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID
from server.vulns.model import Advisory, Status, VendorSeverity

FORMAT = "ubuntu-osv"
FEED = "ubuntu-osv"
MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024
_SEVERITY = {s.value: s for s in VendorSeverity}


def looks_like(document: Any) -> bool:
    return (
        isinstance(document, Mapping)
        and str(document.get("id", "")).startswith("UBUNTU-CVE-")
        and isinstance(document.get("affected"), list)
    )


def parse_zip(data: bytes, where: str, total_limit: int) -> tuple[Advisory, ...]:
    """Every OSV record of a zip archive, within member count and size limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if m.filename.endswith(".json")]
        if len(members) > MAX_MEMBERS:
            raise VulnDbError(f"{where}: more than {MAX_MEMBERS} records")
        total = 0
        advisories: list[Advisory] = []
        for member in members:
            # Checked before reading: the declared size, then the bytes actually read.
            if member.file_size > MAX_MEMBER_BYTES:
                raise VulnDbError(f"{where}: {member.filename} is too large")
            with archive.open(member) as stream:
                raw = stream.read(MAX_MEMBER_BYTES + 1)
            total += len(raw)
            if len(raw) > MAX_MEMBER_BYTES or total > total_limit:
                raise VulnDbError(f"{where}: the archive is larger than allowed")
            advisories.extend(parse(json.loads(raw), f"{where}:{member.filename}"))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise VulnDbError(f"{where}: not a readable OSV zip archive: {e}") from e
    return tuple(advisories)


def parse(record: Any, where: str) -> tuple[Advisory, ...]:
    if not looks_like(record):
        raise VulnDbError(f"{where}: not an Ubuntu OSV record")
    upstream = record.get("upstream") or [str(record["id"]).removeprefix("UBUNTU-")]
    cves = [c for c in upstream if isinstance(c, str) and CVE_ID.fullmatch(c)]
    severity = _severity(record.get("severity"))
    found = [a for cve in cves for a in _affected(record["affected"], cve, severity, where)]
    # Pro (ESM) entries first: where a release also has a public fix, it replaces them.
    return tuple(sorted(found, key=lambda a: not a.pro_only))


def _severity(entries: Any) -> VendorSeverity:
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping) and entry.get("type") == "Ubuntu":
            return _SEVERITY.get(str(entry.get("score", "")).lower(), VendorSeverity.UNKNOWN)
    return VendorSeverity.UNKNOWN


def _affected(
    affected: list[Any], cve: str, severity: VendorSeverity, where: str
) -> Iterator[Advisory]:
    for index, entry in enumerate(affected):
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping) or not isinstance(package.get("name"), str):
            raise VulnDbError(f"{where}: affected[{index}] has no package name")
        parts = str(package.get("ecosystem", "")).split(":")
        if len(parts) < 2 or parts[0] != "Ubuntu":
            raise VulnDbError(f"{where}: affected[{index}] is not an Ubuntu ecosystem")
        pro = "Pro" in parts[1:]
        release = next((p for p in parts[1:] if p[:1].isdigit()), "")
        if not release:
            raise VulnDbError(f"{where}: affected[{index}] names no release")
        fixed = _fixed(entry.get("ranges"), f"{where}: affected[{index}]")
        yield Advisory(
            "ubuntu",
            release,
            package["name"],
            cve,
            status=Status.FIXED if fixed else Status.OPEN,
            fixed_version=fixed,
            # Published with the update: in the archive, except Ubuntu Pro's (ESM).
            archive_version=None if pro else fixed,
            severity=severity,
            pro_only=pro and fixed is not None,
        )


def _fixed(ranges: Any, here: str) -> str | None:
    if not isinstance(ranges, list):
        raise VulnDbError(f"{here}: `ranges` is not a list")
    for version_range in ranges:
        events = version_range.get("events") if isinstance(version_range, Mapping) else None
        if not isinstance(events, list):
            raise VulnDbError(f"{here}: a range without events")
        for event in events:
            if isinstance(event, Mapping) and isinstance(event.get("fixed"), str):
                return str(event["fixed"])
    return None
