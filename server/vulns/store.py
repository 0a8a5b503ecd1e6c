"""The feed store: one SQLite file of its own, beside the collector's database.

An import builds a complete NEW file next to the target and swaps it in with
os.replace: readers see the old store or the new one, never a half-import. Feeds not
named by an import are carried over from the previous store, and so is the date each
fix was first seen (`fix_seen_at`), which is how old an available fix is: the Debian
tracker has no dates of its own. `generation` (a hash of the feeds' contents) names
the store; the collector folds it into its policy fingerprint so that an import
re-evaluates every host.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server.vulns.errors import VulnDbError, VulnErrorKind
from server.vulns.model import Advisory, FeedData, Status, VendorSeverity

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feeds (name TEXT PRIMARY KEY, format TEXT NOT NULL, generated_at TEXT NOT NULL,
  imported_at TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL,
  entries INTEGER NOT NULL);
CREATE TABLE advisories (feed TEXT NOT NULL, distro TEXT NOT NULL, release TEXT NOT NULL,
  package TEXT NOT NULL, cve TEXT NOT NULL, status TEXT NOT NULL, fixed_version TEXT,
  archive_version TEXT, severity TEXT NOT NULL, no_dsa INTEGER NOT NULL,
  fix_seen_at TEXT, pro_only INTEGER NOT NULL,
  PRIMARY KEY (distro, release, package, cve)) WITHOUT ROWID;
CREATE TABLE kev (cve TEXT PRIMARY KEY, date_added TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL)
  WITHOUT ROWID;
"""


@dataclass(frozen=True)
class FeedInfo:
    name: str
    format: str
    generated_at: datetime
    imported_at: datetime
    sha256: str
    size_bytes: int
    entries: int


@dataclass(frozen=True)
class AdvisoryRow:
    """An advisory as matching reads it (per release, by source package)."""

    cve: str
    status: Status
    fixed_version: str | None
    archive_version: str | None
    severity: VendorSeverity
    no_dsa: bool
    fix_seen_at: str | None
    pro_only: bool = False


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def build_store(target: Path, feeds: Sequence[FeedData], now: datetime) -> str:
    """Build the store at `target` from `feeds` plus the previous store's other feeds;
    returns the new generation. Nothing changes at `target` unless all of it worked."""
    names = [feed.name for feed in feeds]
    if len(set(names)) != len(names):
        joined = ", ".join(sorted(names))
        raise VulnDbError(
            f"one import names a feed twice: {joined}", VulnErrorKind.DUPLICATE_FEED, names=joined
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.new")
    temporary.unlink(missing_ok=True)
    try:
        generation = _write(temporary, target if target.exists() else None, feeds, now)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        finally:
            os.close(directory)
    except sqlite3.Error as e:
        raise VulnDbError(
            f"cannot build the feed store {target}: {e}",
            VulnErrorKind.STORE_BUILD,
            path=str(target),
        ) from e
    except OSError as e:
        raise VulnDbError(
            f"cannot build the feed store {target}: {e.strerror or e}",
            VulnErrorKind.STORE_BUILD,
            path=str(target),
        ) from e
    finally:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
    return generation


def _write(path: Path, previous: Path | None, feeds: Sequence[FeedData], now: datetime) -> str:
    with closing(sqlite3.connect(path)) as db:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        seen: dict[tuple[str, str, str, str, str], str] = {}
        if previous is not None:
            _check_readable(previous)
            db.execute("ATTACH DATABASE ? AS old", (f"file:{previous}?mode=ro",))
            replaced = [feed.name for feed in feeds]
            carried = json.dumps(replaced)
            # Static statements: the replaced feeds' names are one JSON parameter.
            db.execute(
                "INSERT INTO feeds SELECT * FROM old.feeds"
                " WHERE name NOT IN (SELECT value FROM json_each(?))",
                (carried,),
            )
            db.execute(
                "INSERT INTO advisories SELECT * FROM old.advisories"
                " WHERE feed NOT IN (SELECT value FROM json_each(?))",
                (carried,),
            )
            if "kev" not in replaced:
                db.execute("INSERT INTO kev SELECT * FROM old.kev")
            if "epss" not in replaced:
                db.execute("INSERT INTO epss SELECT * FROM old.epss")
            for row in db.execute(
                "SELECT distro, release, package, cve, fixed_version, fix_seen_at"
                " FROM old.advisories WHERE fix_seen_at IS NOT NULL"
            ):
                seen[row[:5]] = row[5]
            db.commit()
            db.execute("DETACH DATABASE old")
        stamp = _stamp(now)
        for feed in feeds:
            _insert_feed(db, feed, stamp, seen)
        digests = sorted(db.execute("SELECT name, sha256 FROM feeds"))
        generation = hashlib.sha256(repr(digests).encode()).hexdigest()
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("generation", generation), ("built_at", stamp)],
        )
        db.commit()
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise VulnDbError(
                f"the new feed store {path} failed its integrity check",
                VulnErrorKind.STORE_INTEGRITY,
                path=str(path),
            )
    return generation


def _insert_feed(
    db: sqlite3.Connection,
    feed: FeedData,
    stamp: str,
    seen: dict[tuple[str, str, str, str, str], str],
) -> None:
    db.execute(
        "INSERT INTO feeds VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            feed.name,
            feed.format,
            feed.generated_at,
            stamp,
            feed.sha256,
            feed.size_bytes,
            feed.entries,
        ),
    )
    db.executemany(
        "INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_advisory_row(feed.name, a, stamp, seen) for a in feed.advisories),
    )
    db.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?)", feed.kev)
    db.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?)", feed.epss)


def _advisory_row(
    feed: str, a: Advisory, stamp: str, seen: dict[tuple[str, str, str, str, str], str]
) -> tuple[object, ...]:
    fix_seen = None
    if a.status is Status.FIXED:
        key = (a.distro, a.release, a.package, a.cve, a.fixed_version or "")
        fix_seen = seen.get(key, stamp)
    return (
        feed, a.distro, a.release, a.package, a.cve, a.status.value, a.fixed_version,
        a.archive_version, a.severity.value, int(a.no_dsa), fix_seen, int(a.pro_only),
    )  # fmt: skip


def _check_readable(path: Path) -> None:
    """The previous store must be one of ours before anything is copied from it."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.Error as e:
        raise VulnDbError(
            f"the existing feed store {path} is unreadable: {e}",
            VulnErrorKind.STORE_UNREADABLE,
            path=str(path),
        ) from e
    if row is None or row[0] != SCHEMA_VERSION:
        raise VulnDbError(
            f"the existing feed store {path} has another schema version",
            VulnErrorKind.STORE_VERSION,
            path=str(path),
        )


_ADVISORIES = (
    "SELECT package, cve, status, fixed_version, archive_version, severity, no_dsa,"
    " fix_seen_at, pro_only FROM advisories WHERE distro = ? AND release = ?"
)
_IN_BATCH = 500  # packages per IN list: under SQLite's default parameter limit


class StoreReader:
    """A read-only view of one store file, loaded as the matcher needs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            rows = list(self._db.execute("SELECT * FROM feeds ORDER BY name"))
        except sqlite3.Error as e:
            raise VulnDbError(
                f"the feed store {path} is unreadable: {e}",
                VulnErrorKind.STORE_UNREADABLE,
                path=str(path),
            ) from e
        if meta.get("schema") != SCHEMA_VERSION or "generation" not in meta:
            raise VulnDbError(
                f"{path} is not a feed store of this version",
                VulnErrorKind.STORE_VERSION,
                path=str(path),
            )
        self.generation: str = meta["generation"]
        self.feeds = tuple(
            FeedInfo(r[0], r[1], _parse(r[2]), _parse(r[3]), r[4], r[5], r[6]) for r in rows
        )

    def coverage(self) -> dict[tuple[str, str], str]:
        """(distro, release) -> the feed that covers it."""
        query = "SELECT DISTINCT distro, release, feed FROM advisories"
        return {(distro, release): feed for distro, release, feed in self._db.execute(query)}

    def advisories(self, distro: str, release: str) -> dict[str, tuple[AdvisoryRow, ...]]:
        """Every advisory of one release, by source package."""
        return self._by_package(_ADVISORIES, (distro, release))

    def advisories_of(
        self, distro: str, release: str, packages: Sequence[str]
    ) -> dict[str, tuple[AdvisoryRow, ...]]:
        """The advisories of some packages of one release (a package without any is
        absent): read through the primary key, so a host's first match reads its own
        packages' rows, not the whole release's."""
        found: dict[str, tuple[AdvisoryRow, ...]] = {}
        for start in range(0, len(packages), _IN_BATCH):
            batch = list(packages[start : start + _IN_BATCH])
            marks = ",".join("?" * len(batch))
            query = f"{_ADVISORIES} AND package IN ({marks})"  # only "?" marks: no data
            found.update(self._by_package(query, (distro, release, *batch)))
        return found

    def _by_package(
        self, query: str, parameters: tuple[str, ...]
    ) -> dict[str, tuple[AdvisoryRow, ...]]:
        by_package: dict[str, list[AdvisoryRow]] = {}
        for row in self._db.execute(query, parameters):
            by_package.setdefault(row[0], []).append(
                AdvisoryRow(
                    cve=row[1],
                    status=Status(row[2]),
                    fixed_version=row[3],
                    archive_version=row[4],
                    severity=VendorSeverity(row[5]),
                    no_dsa=bool(row[6]),
                    fix_seen_at=row[7],
                    pro_only=bool(row[8]),
                )
            )
        return {package: tuple(rows) for package, rows in by_package.items()}

    def kev(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT cve, date_added FROM kev"))

    def epss(self) -> dict[str, float]:
        return {cve: score for cve, score in self._db.execute("SELECT cve, score FROM epss")}

    def close(self) -> None:
        self._db.close()


def read_status(path: Path) -> tuple[FeedInfo, ...]:
    reader = StoreReader(path)
    try:
        return reader.feeds
    finally:
        reader.close()
