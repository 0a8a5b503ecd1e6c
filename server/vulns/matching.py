"""Matching one host's packages against the store: the derived `vulnerabilities` domain.

Exact distribution matching only (never NVD/CPE, which ignores backported fixes):
- Debian/Ubuntu by SOURCE package and source version, in dpkg order; RHEL by source
  RPM, Rocky/Alma by binary name.arch, module builds by their stream only, in
  rpmvercmp order; kernel CVEs only for the RUNNING kernel's image (grouping.py,
  rpm_keys.py);
- the release from os-release (VERSION_CODENAME);
- "fixed" in a feed is `fix_available` only when the release's archive has the fix,
  else `fix_pending`.
Speed (a province re-matched after an import): a release's advisories are read from
the store per installed source, once, as hosts need them; the items of one installed
(source, version, binaries) are computed once per day and shared, read-only; a caller
that knows a digest of the host's package list (the audit: the stored blob) passes it
and a host with an already matched package list costs dict lookups only.
A store that is absent, unreadable, stale, or that covers no feed for the host's
release yields no domain but an `errors` entry with the reason: rules reading it are
then in error, never clean. The domain is computed at evaluation and never stored
or accepted from agents (ingest drops top-level keys the facts schema does not have).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from operator import itemgetter
from pathlib import Path
from typing import Any

from server.vulns.errors import VulnDbError
from server.vulns.feeds.ubuntu_vex import DISTRO as VEX
from server.vulns.grouping import Sources, group_sources
from server.vulns.model import State, Status
from server.vulns.rpm_keys import BINARY_KEYED
from server.vulns.store import AdvisoryRow, StoreReader
from server.vulns.versions import compare

DOMAIN = "vulnerabilities"
MAX_BINARIES = 10  # binaries named per item: evidence, not an inventory
MAX_REMEMBERED = 200_000  # installed (source, version)s whose items are kept
MAX_PACKAGE_SETS = 2_000  # package lists (by their digest) whose items are kept

Items = tuple[dict[str, Any], ...]
_Package = tuple[str, str, tuple[str, ...]]  # source, source version, binaries (sorted)


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
        # (distro, release) -> source -> its advisories (() when none), filled as
        # hosts need them; bounded by the release's size in the store
        self._index: dict[tuple[str, str], dict[str, tuple[AdvisoryRow, ...]]] = {}
        self._whole: set[tuple[str, str]] = set()  # releases read entirely
        # (distro, release, manager, day) -> (source, version, binaries) -> its items
        self._cache: dict[tuple[str, str, str, str], dict[_Package, Items]] = {}
        self._remembered = 0
        # (digest of a package list, distro, release, running kernel, day) -> items
        self._hosts: dict[tuple[Hashable, ...], tuple[Items, str | None]] = {}
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
        self, facts: Mapping[str, Any], today: date, packages_key: Hashable | None = None
    ) -> tuple[dict[str, Any] | None, Problem | None]:
        """The domain of one host, or why there is none. `packages_key`, when given,
        must name the content of `facts["packages"]` exactly (a digest of it)."""
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
        host_key = (packages_key, distro, release, running, today.isoformat())
        known = self._hosts.get(host_key) if packages_key is not None else None
        if known is None:
            sources, kernel_package = group_sources(packages.get("items"), running, distro, manager)
            known = (self._host_items(distro, release, manager, sources, today), kernel_package)
            if packages_key is not None:
                if len(self._hosts) >= MAX_PACKAGE_SETS:
                    self._hosts.clear()  # bounded; refilled by the next hosts
                self._hosts[host_key] = known
        items, kernel_package = known
        domain = {
            "feed": feed,
            "release": release,
            "feed_generated_at": info.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "feed_age_days": age,
            "running_kernel": running,
            "running_kernel_package": kernel_package,
            "count": len(items),
            "items": list(items),  # the caller's own list; the items are shared, read-only
        }
        return domain, None

    def _host_items(
        self, distro: str, release: str, manager: str, sources: Sources, today: date
    ) -> Items:
        """The items of one host's grouped packages, by (source, version), then CVE.
        Hosts of a province run the same versions: the comparisons (dpkg order in
        Python is the cost) and the items of a (source, version, binaries) are computed
        once per day and shared, read-only."""
        context = (distro, release, manager, today.isoformat())
        known = self._cache.get(context)
        if known is None:
            known = self._cache.setdefault(context, {})
        packages = sorted(
            (source, version, (binaries[0],) if len(binaries) == 1 else tuple(sorted(binaries)))
            for (source, version), binaries in sources.items()
        )
        missing = [package for package in packages if package not in known]
        made: dict[_Package, Items] = {}
        if missing:
            rows = self._advisories_of(distro, release, {source for source, _v, _b in missing})
            overlay: dict[str, tuple[AdvisoryRow, ...]] = {}
            if distro == "ubuntu":  # VEX says which OSV "affected, no fix" are given up
                overlay = self._advisories_of(VEX, release, {s for s, _v, _b in missing})
            for package in missing:
                made[package] = self._items(manager, package, rows, overlay, today)
            if self._remembered + len(made) > MAX_REMEMBERED:
                self._cache.clear()  # bounded; refilled by the next hosts
                self._remembered = 0
            self._cache.setdefault(context, {}).update(made)
            self._remembered += len(made)
        items = [item for package in packages for item in made.get(package) or known[package]]
        seen: set[str] = set()
        duplicated: set[str] = set()
        for source, _version in sources:
            (duplicated if source in seen else seen).add(source)
        if duplicated:
            return tuple(_one_per_key(items, manager, duplicated))
        return tuple(items)

    def _items(
        self,
        manager: str,
        package: _Package,
        rows: Mapping[str, tuple[AdvisoryRow, ...]],
        overlay: Mapping[str, tuple[AdvisoryRow, ...]],
        today: date,
    ) -> Items:
        """The items of one installed source, by CVE."""
        source, version, _binaries = package
        given_up = {r.cve: r.status for r in overlay.get(source, ())}
        return tuple(
            sorted(
                (
                    self._item(row, state, package, today)
                    for row in rows.get(source, ())
                    if (state := _state(row, version, manager, given_up.get(row.cve))) is not None
                ),
                key=lambda item: str(item["cve"]),
            )
        )

    def advisories(self, distro: str, release: str) -> dict[str, tuple[AdvisoryRow, ...]]:
        """Every advisory of one release, by source package."""
        key = (distro, release)
        with self._lock:
            index = self._index.setdefault(key, {})
            if key not in self._whole:
                assert self.reader is not None
                index.update(self.reader.advisories(distro, release))
                self._whole.add(key)
            return {source: rows for source, rows in index.items() if rows}

    def _advisories_of(
        self, distro: str, release: str, sources: set[str]
    ) -> dict[str, tuple[AdvisoryRow, ...]]:
        """The advisories of some sources of a release, each read from the store once
        and then shared by every host of the release."""
        key = (distro, release)
        with self._lock:  # one reader connection; one read per source
            index = self._index.setdefault(key, {})
            unread = sorted(s for s in sources if s not in index)
            if unread and key not in self._whole:
                assert self.reader is not None
                found = self.reader.advisories_of(distro, release, unread)
                for source in unread:
                    index[source] = found.get(source, ())
            return {source: index.get(source, ()) for source in sources}

    def _item(
        self, row: AdvisoryRow, state: State, package: _Package, today: date
    ) -> dict[str, Any]:
        source, version, binaries = package
        fix_age = None
        if state is State.FIX_AVAILABLE and row.fix_seen_at:
            seen = datetime.fromisoformat(row.fix_seen_at.replace("Z", "+00:00")).date()
            fix_age = max((today - seen).days, 0)
        return {
            "cve": row.cve,
            "package": source,
            "binaries": list(binaries[:MAX_BINARIES]),
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


def _one_per_key(
    items: list[dict[str, Any]], manager: str, duplicated: set[str]
) -> list[dict[str, Any]]:
    """One item per (CVE, source package), the finding's key, in that order: binaries
    of one source at two versions (a half-finished upgrade) are one item, at the older
    version. Only the `duplicated` sources' items can share a key: only theirs are
    compared (the others are most of a host's items)."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    alone: list[dict[str, Any]] = []
    for item in items:
        if item["package"] not in duplicated:
            alone.append(item)
            continue
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
    alone.extend(kept.values())
    # by (CVE, package), in two stable sorts on plain strings: no key tuples made, and
    # the first finds the items nearly in order already
    alone.sort(key=itemgetter("package"))
    alone.sort(key=itemgetter("cve"))
    return alone


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
