"""Read one feed file: size limit first, then the format from its content."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds import (
    alma_errata,
    debian,
    priority,
    redhat,
    ubuntu,
    ubuntu_vex,
    updateinfo,
)
from server.vulns.model import Advisory, FeedData

MAX_FEED_BYTES = 1024 * 1024 * 1024


def read_feed(path: Path, fetched_at: datetime | None = None) -> FeedData:
    """Parse and validate `path`; `fetched_at` (from a bundle's manifest) dates the
    data, else the file's modification time does (when it was downloaded)."""
    try:
        size = path.stat().st_size
        if size > MAX_FEED_BYTES:
            raise VulnDbError(f"{path}: {size} bytes is over the {MAX_FEED_BYTES} byte limit")
        data = path.read_bytes()
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as e:
        raise VulnDbError(f"{path}: cannot read: {e.strerror or e}") from e
    when = (fetched_at or mtime).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(data).hexdigest()
    where = str(path)
    if data[:4] == b"PK\x03\x04":  # a zip archive: OSV records (Ubuntu's all.zip)
        advisories = ubuntu.parse_zip(data, where, MAX_FEED_BYTES)
        return FeedData(ubuntu.FEED, ubuntu.FORMAT, when, digest, size, advisories=advisories)
    if data[:2] == b"\x1f\x8b":  # gzip: a repository's updateinfo.xml.gz
        data = _gunzip(data, where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VulnDbError(f"{where}: not UTF-8 text") from e
    if updateinfo.looks_like(text):
        feed, advisories = updateinfo.feed_of(text, where)
        return FeedData(feed, updateinfo.FORMAT, when, digest, size, advisories=advisories)
    if priority.looks_like_epss(text):
        score_date, scores = priority.parse_epss(text, where)
        dated = _day(score_date, when)
        return FeedData("epss", priority.EPSS_FORMAT, dated, digest, size, epss=scores)
    try:
        document = json.loads(text)
    except ValueError as e:
        # a truncated download ends here: refused whole
        raise VulnDbError(f"{where}: not valid JSON ({e})") from e
    if priority.looks_like_kev(document):
        released, entries = priority.parse_kev(document, where)
        return FeedData("kev", priority.KEV_FORMAT, _day(released, when), digest, size, kev=entries)
    advisory_feed = _advisory_feed(document, where)
    if advisory_feed is not None:
        name, form, advisories = advisory_feed
        return FeedData(name, form, when, digest, size, advisories=advisories)
    raise VulnDbError(
        f"{where}: not a known feed format (Debian tracker JSON, Ubuntu OSV or VEX, Red Hat CSAF"
        " VEX, Rocky/Alma updateinfo, Alma errata JSON, KEV, EPSS)"
    )


def _advisory_feed(document: Any, where: str) -> tuple[str, str, tuple[Advisory, ...]] | None:
    """(feed name, format, advisories) of a distribution's JSON document, if it is one."""
    if alma_errata.looks_like(document):
        return alma_errata.FEED, alma_errata.FORMAT, alma_errata.parse(document, where)
    if redhat.looks_like(document):
        return redhat.FEED, redhat.FORMAT, redhat.parse(document, where)
    if ubuntu_vex.looks_like(document):
        return ubuntu_vex.FEED, ubuntu_vex.FORMAT, ubuntu_vex.parse(document, where)
    if ubuntu.looks_like(document):
        return ubuntu.FEED, ubuntu.FORMAT, ubuntu.parse(document, where)
    if debian.looks_like(document):
        return debian.FEED, debian.FORMAT, debian.parse(document, where)
    return None


def _gunzip(data: bytes, where: str) -> bytes:
    """Decompressed within the same byte limit: a small bomb is refused, not expanded."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_FEED_BYTES + 1)
    except zlib.error as e:
        raise VulnDbError(f"{where}: not valid gzip ({e})") from e
    if len(out) > MAX_FEED_BYTES:
        raise VulnDbError(f"{where}: decompresses to over the {MAX_FEED_BYTES} byte limit")
    if not inflater.eof:
        raise VulnDbError(f"{where}: truncated gzip")
    return out


def _day(stated: str, fallback: str) -> str:
    """A feed's own date (the older of it and the file's) as RFC 3339 UTC."""
    try:
        parsed = datetime.fromisoformat(stated.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    text = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return min(text, fallback)
