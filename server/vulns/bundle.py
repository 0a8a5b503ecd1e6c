"""Feed bundles for air-gapped collectors: `vulndb fetch` on a connected machine writes
the feed files and `manifest.json` (SHA-256 and size of each); `vulndb import` of the
bundle directory verifies every file against it before parsing anything, so a file
altered or cut on the way is refused and the store stays as it was.

Fetching uses HTTPS with certificate verification; plain HTTP is accepted only for
loopback addresses (the tests' own server). Downloads are capped in size.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import ssl
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.vulns.errors import VulnDbError, VulnErrorKind
from server.vulns.feeds.detect import MAX_FEED_BYTES, read_feed
from server.vulns.model import FeedData

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "canhgac.vulndb-bundle/v1"
DEFAULT_SOURCES: tuple[tuple[str, str], ...] = (
    ("debian-tracker.json", "https://security-tracker.debian.org/tracker/data/json"),
    (
        "kev.json",
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    ),
    ("epss.csv.gz", "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"),
    ("ubuntu-osv.zip", "https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip"),
)
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Fetched:
    name: str
    url: str
    sha256: str
    size_bytes: int


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _download(url: str, limit: int) -> bytes:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (
        parts.scheme == "http" and _is_loopback(parts.hostname or "")
    ):
        raise VulnDbError(
            f"{url}: only https (or http to loopback) is fetched",
            VulnErrorKind.URL_REFUSED,
            url=url,
        )
    context = ssl.create_default_context()  # verifies certificates and host names
    request = urllib.request.Request(url, headers={"User-Agent": "canhgac-vulndb"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as answer:  # noqa: S310
            data: bytes = answer.read(limit + 1)
    except OSError as e:
        raise VulnDbError(
            f"{url}: download failed: {e}", VulnErrorKind.DOWNLOAD_FAILED, url=url
        ) from e
    if len(data) > limit:
        raise VulnDbError(
            f"{url}: larger than {limit} bytes",
            VulnErrorKind.DOWNLOAD_TOO_LARGE,
            url=url,
            limit=str(limit),
        )
    return data


def _gunzip(data: bytes, url: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            plain = stream.read(MAX_FEED_BYTES + 1)
    except (OSError, EOFError) as e:
        raise VulnDbError(f"{url}: not valid gzip: {e}", VulnErrorKind.NOT_GZIP, url=url) from e
    if len(plain) > MAX_FEED_BYTES:
        raise VulnDbError(
            f"{url}: more than {MAX_FEED_BYTES} bytes once decompressed",
            VulnErrorKind.GZIP_TOO_LARGE,
            url=url,
            limit=str(MAX_FEED_BYTES),
        )
    return plain


def fetch_bundle(
    directory: Path, sources: Sequence[tuple[str, str]], now: datetime
) -> list[Fetched]:
    """Download each (file name, URL) into `directory` and write the manifest last."""
    directory.mkdir(parents=True, exist_ok=True)
    fetched = []
    for given, url in sources:
        if "/" in given or given.startswith(".") or given == MANIFEST:
            raise VulnDbError(
                f"{given!r} is not a plain file name", VulnErrorKind.BAD_FILE_NAME, name=given
            )
        data = _download(url, MAX_FEED_BYTES)
        name = given.removesuffix(".gz")
        if name != given:
            data = _gunzip(data, url)
        _write_atomically(directory / name, data)
        fetched.append(Fetched(name, url, hashlib.sha256(data).hexdigest(), len(data)))
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "fetched_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [
            {"name": f.name, "url": f.url, "sha256": f.sha256, "size_bytes": f.size_bytes}
            for f in fetched
        ],
    }
    _write_atomically(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
    return fetched


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.new")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_bundle(directory: Path) -> list[FeedData]:
    """Every feed of a bundle, each verified against the manifest before parsing."""
    manifest = _manifest(directory)
    fetched_at = datetime.fromisoformat(manifest["fetched_at"].replace("Z", "+00:00"))
    feeds = []
    for entry in manifest["files"]:
        path = directory / entry["name"]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise VulnDbError(
                f"{path}: listed in the manifest but unreadable: {e}",
                VulnErrorKind.LISTED_UNREADABLE,
                path=str(path),
            ) from e
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != entry["size_bytes"] or digest != entry["sha256"]:
            raise VulnDbError(
                f"{path}: does not match the manifest (size {len(data)}, SHA-256 {digest}):"
                " altered or cut in transit; nothing imported",
                VulnErrorKind.MANIFEST_MISMATCH,
                path=str(path),
            )
        feeds.append(_read_feed(path, fetched_at))
    return feeds


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise VulnDbError(
            f"{path}: not a readable bundle manifest: {e}",
            VulnErrorKind.MANIFEST_UNREADABLE,
            path=str(path),
        ) from e
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("schema") != MANIFEST_SCHEMA
        or not isinstance(manifest.get("fetched_at"), str)
        or not isinstance(files, list)
    ):
        raise VulnDbError(
            f"{path}: not a {MANIFEST_SCHEMA} manifest",
            VulnErrorKind.MANIFEST_INVALID,
            path=str(path),
        )
    for entry in files:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and "/" not in entry["name"]
            and not entry["name"].startswith(".")
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("size_bytes"), int)
        ):
            raise VulnDbError(
                f"{path}: a file entry is malformed",
                VulnErrorKind.MANIFEST_INVALID,
                path=str(path),
            )
    return manifest


def read_inputs(paths: Sequence[Path]) -> list[FeedData]:
    """Feed files and bundle directories, all parsed and validated, or VulnDbError."""
    feeds: list[FeedData] = []
    for path in paths:
        if path.is_dir():
            feeds.extend(read_bundle(path))
        else:
            feeds.append(_read_feed(path, None))
    if not feeds:
        raise VulnDbError("nothing to import", VulnErrorKind.NOTHING_TO_IMPORT)
    return merge_feeds(feeds)


def _read_feed(path: Path, fetched_at: datetime | None) -> FeedData:
    """`read_feed`, its refusals named by the file: a parser's reason is English
    detail, the file is what a user of any language needs to know."""
    try:
        return read_feed(path, fetched_at)
    except VulnDbError as e:
        if "path" in e.params:
            raise
        raise VulnDbError(str(e), e.kind, path=str(path), **e.params) from e


def merge_feeds(feeds: Sequence[FeedData]) -> list[FeedData]:
    """One FeedData per feed name: Red Hat's VEX and Ubuntu's OSV come as many files
    of one feed. Dated by the oldest file, named by all their digests."""
    by_name: dict[str, list[FeedData]] = {}
    for feed in feeds:
        by_name.setdefault(feed.name, []).append(feed)
    merged = []
    for name, parts in by_name.items():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        digest = hashlib.sha256("".join(sorted(p.sha256 for p in parts)).encode()).hexdigest()
        merged.append(
            FeedData(
                name,
                parts[0].format,
                min(p.generated_at for p in parts),
                digest,
                sum(p.size_bytes for p in parts),
                advisories=tuple(a for p in parts for a in p.advisories),
                kev=tuple(k for p in parts for k in p.kev),
                epss=tuple(e for p in parts for e in p.epss),
            )
        )
    return merged
