"""Priority feeds: CISA's Known Exploited Vulnerabilities catalogue (JSON) and FIRST's
EPSS scores (CSV). They rank CVEs; they never decide whether a host is affected."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.debian import CVE_ID

KEV_FORMAT = "cisa-kev-json"
EPSS_FORMAT = "epss-csv"


def looks_like_kev(document: Any) -> bool:
    return (
        isinstance(document, Mapping)
        and "catalogVersion" in document
        and isinstance(document.get("vulnerabilities"), list)
    )


def parse_kev(document: Mapping[str, Any], where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(dateReleased, ((cve, dateAdded), ...))."""
    released = document.get("dateReleased")
    if not isinstance(released, str):
        raise VulnDbError(f"{where}: KEV catalogue without dateReleased")
    entries = []
    for index, item in enumerate(document["vulnerabilities"]):
        cve = item.get("cveID") if isinstance(item, Mapping) else None
        added = item.get("dateAdded") if isinstance(item, Mapping) else None
        if not isinstance(cve, str) or not CVE_ID.fullmatch(cve) or not isinstance(added, str):
            raise VulnDbError(f"{where}: vulnerabilities[{index}] has no valid cveID/dateAdded")
        entries.append((cve, added))
    if document.get("count") not in (None, len(entries)):
        # The catalogue states its own length: a cut file is refused, not half-used.
        raise VulnDbError(f"{where}: count says {document.get('count')}, found {len(entries)}")
    return released, tuple(entries)


def looks_like_epss(text: str) -> bool:
    head = text[:200]
    return head.startswith("#model_version") or head.startswith("cve,epss,percentile")


def parse_epss(text: str, where: str) -> tuple[str, tuple[tuple[str, float, float], ...]]:
    """(score date, ((cve, score, percentile), ...))."""
    lines = text.splitlines()
    score_date = ""
    if lines and lines[0].startswith("#"):
        for part in lines[0][1:].split(","):
            key, _, value = part.partition(":")
            if key == "score_date":
                score_date = value
        lines = lines[1:]
    if not lines or lines[0].strip() != "cve,epss,percentile":
        raise VulnDbError(f"{where}: EPSS file without its cve,epss,percentile header")
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        try:
            cve, score_text, percentile_text = row
            score, percentile = float(score_text), float(percentile_text)
        except ValueError as e:
            raise VulnDbError(f"{where}: line {number} is not cve,epss,percentile") from e
        if not CVE_ID.fullmatch(cve) or not all(
            math.isfinite(v) and 0.0 <= v <= 1.0 for v in (score, percentile)
        ):
            raise VulnDbError(f"{where}: line {number} has an invalid CVE or score")
        rows.append((cve, score, percentile))
    if not score_date:
        raise VulnDbError(f"{where}: EPSS file without its score_date")
    return score_date, tuple(rows)
