"""Matching one host's packages against the store: the derived `vulnerabilities` domain.

Exact distribution matching only (never NVD/CPE, which ignores backported fixes):
- Debian/Ubuntu by SOURCE package and source version, in dpkg order (feeds are keyed
  by source: libssl3 is `openssl`); RHEL by source RPM, Rocky/Alma by binary
  name.arch, module builds by their stream only, in rpmvercmp order (rpm_keys.py);
- kernel CVEs only for the RUNNING kernel's image: `linux-signed-amd64` images are
  the `linux` source at the binary's version; other installed kernels, headers and
  tools built from `linux` are skipped;
- the release from os-release (VERSION_CODENAME);
- "fixed" in a feed is `fix_available` only when the release's archive has the fix,
  else `fix_pending`.
A store that is absent, unreadable, stale, or that covers no feed for the host's
release yields no domain but an `errors` entry with the reason: rules reading it are
then in error, never clean. The domain is computed at evaluation and never stored
or accepted from agents (ingest drops top-level keys the facts schema does not have).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.ubuntu_vex import DISTRO as VEX
from server.vulns.model import State, Status
from server.vulns.rpm_keys import BINARY_KEYED, rpm_key
from server.vulns.store import AdvisoryRow, StoreReader
from server.vulns.versions import compare

DOMAIN = "vulnerabilities"
KERNEL_SOURCES = frozenset(
    {"linux", "linux-signed-amd64", "linux-signed-arm64", "linux-signed-i386"}
)
MAX_BINARIES = 10  # binaries named per item: evidence, not an inventory
MAX_REMEMBERED = 200_000  # installed (source, version)s whose items are kept


class Cause(StrEnum):
    """Why a host could not be matched, for readers that act on it (the audit)."""

    NO_STORE = "no_store"
    BAD_STORE = "bad_store"
    NO_FACTS = "no_facts"
    UNSUPPORTED = "unsupported"
    STALE = "stale"


@dataclass(frozen=True)
class Problem:
    kind: str  # an `errors` kind of the facts schema: failed | unsupported
    reason: str
    cause: Cause

    def entry(self) -> dict[str, str]:
        return {"domain": DOMAIN, "kind": self.kind, "reason": self.reason}


class VulnMatcher:
    """One loaded store (or the reason there is none), shared by evaluations."""

    def __init__(self, path: Path, max_age_days: float) -> None:
        self.path = path
        self.max_age_days = max_age_days
        self._lock = threading.Lock()
        self._releases: dict[tuple[str, str], dict[str, tuple[AdvisoryRow, ...]]] = {}
        # (distro, release, manager, source, version, day, binaries...) -> its items
        self._cache: dict[tuple[str, ...], tuple[dict[str, Any], ...]] = {}
        self.reader: StoreReader | None = None
        self.problem: Problem | None = None
        self._kev: dict[str, str] = {}
        self._epss: dict[str, float] = {}
        self._coverage: dict[tuple[str, str], str] = {}
        if not path.exists():
            self.problem = Problem(
                "failed",
                f"no vulnerability feed has been imported ({path} does not exist;"
                " see canhgac-server vulndb import)",
                Cause.NO_STORE,
            )
            return
        try:
            self.reader = StoreReader(path)
            self._coverage = self.reader.coverage()
            self._kev = self.reader.kev()
            self._epss = self.reader.epss()
        except VulnDbError as e:
            self.reader = None
            self.problem = Problem("failed", str(e), Cause.BAD_STORE)

    @property
    def generation(self) -> str:
        """Names the store's content for the policy fingerprint ("absent" without one)."""
        if self.reader is None:
            return f"absent:{self.problem.reason if self.problem else ''}"
        return f"{self.reader.generation}:max_age={self.max_age_days!r}"

    def enrich(self, facts: Mapping[str, Any], today: date) -> dict[str, Any]:
        """`facts` with the `vulnerabilities` domain, or with an `errors` entry saying
        why it could not be computed."""
        enriched = dict(facts)
        enriched.pop(DOMAIN, None)  # only ever the collector's own
        domain, problem = self.match(facts, today)
        if domain is not None:
            enriched[DOMAIN] = domain
        if problem is not None:
            errors = facts.get("errors")
            enriched["errors"] = [*(errors if isinstance(errors, list) else []), problem.entry()]
        return enriched

    def match(
        self, facts: Mapping[str, Any], today: date
    ) -> tuple[dict[str, Any] | None, Problem | None]:
        if self.reader is None:
            return None, self.problem
        host = facts.get("host")
        packages = facts.get("packages")
        if not isinstance(host, Mapping) or not isinstance(packages, Mapping):
            return None, Problem("failed", "the host or packages facts are missing", Cause.NO_FACTS)
        os_release = _mapping(host.get("os"))
        distro = str(os_release.get("id") or "")
        release = _release(distro, os_release)
        feed = self._coverage.get((distro, release))
        if feed is None:
            return None, Problem(
                "unsupported",
                f"no imported feed covers {distro or '?'} {release or '?'}",
                Cause.UNSUPPORTED,
            )
        info = next(f for f in self.reader.feeds if f.name == feed)
        age = max((today - info.generated_at.date()).days, 0)  # a clock behind the feed's
        if age > self.max_age_days:
            return None, Problem(
                "failed",
                f"stale: the {feed} feed is {age} days old (more than {self.max_age_days:g}):"
                " import a newer one",
                Cause.STALE,
            )
        kernel = _mapping(host.get("kernel"))
        running = str(kernel.get("release") or "")
        manager = str(packages.get("manager") or "dpkg")
        sources, kernel_package = _sources(packages.get("items"), running, distro, manager)
        items: list[dict[str, Any]] = []
        for (source, version), binaries in sorted(sources.items()):
            items.extend(self._items(distro, release, manager, (source, version, binaries), today))
        if len(sources) != len({source for source, _ in sources}):
            items = _one_per_key(items, manager)
        domain = {
            "feed": feed,
            "release": release,
            "feed_generated_at": info.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "feed_age_days": age,
            "running_kernel": running,
            "running_kernel_package": kernel_package,
            "count": len(items),
            "items": items,
        }
        return domain, None

    def _items(
        self,
        distro: str,
        release: str,
        manager: str,
        package: tuple[str, str, list[str]],  # source, source version, binaries
        today: date,
    ) -> tuple[dict[str, Any], ...]:
        """The items of one installed source, by CVE. Hosts of a province run the same
        versions: the comparisons (dpkg order in Python is the cost) and the items are
        computed once per (source, version, binaries, day) and shared, read-only."""
        source, version, binaries = package
        key = (distro, release, manager, source, version, today.isoformat(), *sorted(binaries))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = self.advisories(distro, release).get(source, ())
        overlay = {}
        if distro == "ubuntu":  # VEX says which OSV "affected, no fix" are given up
            overlay = {r.cve: r.status for r in self.advisories(VEX, release).get(source, ())}
        made = tuple(
            sorted(
                (
                    self._item(row, state, package, today)
                    for row in rows
                    if (state := _state(row, version, manager, overlay.get(row.cve))) is not None
                ),
                key=lambda item: str(item["cve"]),
            )
        )
        if len(self._cache) >= MAX_REMEMBERED:
            self._cache.clear()  # bounded; refilled by the next hosts
        self._cache[key] = made
        return made

    def advisories(self, distro: str, release: str) -> dict[str, tuple[AdvisoryRow, ...]]:
        key = (distro, release)
        with self._lock:  # one load per release, then shared by every host of it
            if key not in self._releases:
                assert self.reader is not None
                self._releases[key] = self.reader.advisories(distro, release)
            return self._releases[key]

    def _item(
        self,
        row: AdvisoryRow,
        state: State,
        package: tuple[str, str, list[str]],  # source, source version, binaries
        today: date,
    ) -> dict[str, Any]:
        source, version, binaries = package
        fix_age = None
        if state is State.FIX_AVAILABLE and row.fix_seen_at:
            seen = datetime.fromisoformat(row.fix_seen_at.replace("Z", "+00:00")).date()
            fix_age = max((today - seen).days, 0)
        return {
            "cve": row.cve,
            "package": source,
            "binaries": sorted(binaries)[:MAX_BINARIES],
            "installed_version": version,
            "fixed_version": row.fixed_version,
            "archive_version": row.archive_version,
            "state": state.value,
            "severity": row.severity.value,
            "no_dsa": row.no_dsa,
            "pro_only": row.pro_only,
            "kev": row.cve in self._kev,
            "epss": self._epss.get(row.cve),
            "fix_age_days": fix_age,
        }

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _release(distro: str, os_release: Mapping[str, Any]) -> str:
    """How the feeds name the host's release: Debian by codename, Ubuntu by version
    (24.04), RHEL, Rocky and Alma by major version (9 for 9.4)."""
    if distro == "ubuntu":
        return str(os_release.get("version_id") or "")
    if distro == "rhel" or distro in BINARY_KEYED:
        return str(os_release.get("version_id") or "").split(".", 1)[0]
    return str(os_release.get("version_codename") or "")


def _one_per_key(items: list[dict[str, Any]], manager: str) -> list[dict[str, Any]]:
    """One item per (CVE, source package), the finding's key: binaries of one source
    at two versions (a half-finished upgrade) are one item, at the older version."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (item["cve"], item["package"])
        known = kept.get(key)
        if known is None:
            kept[key] = item
            continue
        older = (
            item
            if compare(manager, item["installed_version"], known["installed_version"]) < 0
            else known
        )
        binaries = sorted({*known["binaries"], *item["binaries"]})[:MAX_BINARIES]
        kept[key] = {**older, "binaries": binaries}
    return [kept[key] for key in sorted(kept)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _state(
    row: AdvisoryRow, version: str, manager: str, overlay: Status | None = None
) -> State | None:
    if row.status is Status.OPEN and overlay is not None:
        row = replace(row, status=overlay)  # never over a published fix
    if row.status is Status.FIXED:
        fixed = row.fixed_version or ""
        if compare(manager, version, fixed) >= 0:
            return None
        if row.archive_version and compare(manager, row.archive_version, fixed) >= 0:
            return State.FIX_AVAILABLE
        return State.FIX_PENDING
    return {
        Status.OPEN: State.AFFECTED_NO_FIX,
        Status.IGNORED: State.WILL_NOT_FIX,
        Status.END_OF_LIFE: State.END_OF_LIFE,
    }[row.status]


def _sources(
    items: Any, running_kernel: str, distro: str, manager: str
) -> tuple[dict[tuple[str, str], list[str]], str | None]:
    """(source, source version) -> binaries; the running kernel's package name. RPM
    keys (source or binary.arch, module stream) are rpm_keys.py's."""
    rpm = manager == "rpm"
    sources: dict[tuple[str, str], list[str]] = {}
    kernel_package = None
    running_images = {f"linux-image-{running_kernel}", f"linux-image-{running_kernel}-unsigned"}
    for package in items if isinstance(items, list) else ():
        if not isinstance(package, Mapping):
            continue
        name = str(package.get("name") or "")
        version = str(package.get("version") or "")
        source = str(package.get("source") or name)
        source_version = str(package.get("source_version") or version)
        if source in KERNEL_SOURCES:
            if name not in running_images:
                continue  # not the running kernel: an old image, headers, tools
            # signed images: the binary's version is the `linux` source version
            source, source_version, kernel_package = "linux", version, name
        elif rpm:
            key = rpm_key(package, distro, running_kernel)
            if key is None:
                continue  # an installed kernel that is not the running one
            source, source_version, image = key
            kernel_package = name if image else kernel_package
        if name and source_version:
            sources.setdefault((source, source_version), []).append(name)
    return sources, kernel_package
