"""The audit's vulnerability section: an agency's known vulnerabilities as of the cut-off.

The packages are read from the very reports the rest of the audit uses (each host's
newest evaluated report before the cut-off), as `server.read.audit_lan` does for the
LAN, so an audit as of a past date shows the packages installed then. They are
matched against the CURRENT feed store (the store of the cut-off day is not kept):
the section says so. The matching day is the cut-off's day, so the feeds' age and
each fix's age are measured at the cut-off, and nothing here reads the clock.

A store that is missing or unreadable, or stale for every host, gives a section whose
counts are null, never "0 vulnerabilities"; the hosts that could not be matched are
listed with the reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.read.audit_views import (
    VulnCountRow,
    VulnFeedRow,
    VulnHostProblem,
    VulnHostRow,
    VulnItemRow,
    VulnSection,
    VulnStatus,
    VulnUnmatched,
)
from server.storage.fact_load import domain_blob_ids
from server.storage.fact_store import load_domains
from server.vulns.matching import Cause, Problem, VulnMatcher
from server.vulns.model import State, VendorSeverity

TOP_HOSTS = 10
_DOMAINS = ("host", "packages")
_BATCH = 200
_URGENT_SEVERITIES = frozenset({VendorSeverity.CRITICAL.value, VendorSeverity.HIGH.value})


@dataclass(frozen=True)
class _Matched:
    label: str
    items: tuple[dict[str, Any], ...]


def vuln_sections(
    session: Session,
    matcher: VulnMatcher | None,
    hosts: Iterable[tuple[str, str, int]],
    day: date,
) -> dict[str, VulnSection]:
    """agency -> its section, for every agency with a host in `hosts`: (agency, label,
    report pk) of each host the audit counts; `day` is the cut-off's day."""
    chosen = list(hosts)
    agencies = sorted({agency for agency, _label, _pk in chosen})
    if matcher is None or matcher.reader is None:
        return {agency: not_assessed(matcher, day) for agency in agencies}
    matched: dict[str, list[_Matched]] = defaultdict(list)
    unmatched: dict[str, list[VulnUnmatched]] = defaultdict(list)
    # Bounded memory: the packages of _BATCH hosts at a time (a province's package
    # lists parsed at once would be gigabytes); the items kept are shared by the
    # matcher between hosts of the same package versions.
    for start in range(0, len(chosen), _BATCH):
        batch = chosen[start : start + _BATCH]
        pks = [pk for *_rest, pk in batch]
        facts = load_domains(session, pks, _DOMAINS)
        blobs = _package_blobs(session, pks)
        for agency, label, pk in batch:
            domain, problem = matcher.match(facts.get(pk, {}), day, blobs.get(pk))
            if domain is None:
                unmatched[agency].append(VulnUnmatched(host=label, problem=_problem(problem)))
            else:
                matched[agency].append(_Matched(label, tuple(domain["items"])))
    feeds = _feeds(matcher, day)
    return {
        agency: _section(
            matcher.max_age_days,
            feeds,
            sorted(matched[agency], key=lambda m: m.label),
            sorted(unmatched[agency], key=lambda u: u.host),
            day,
        )
        for agency in agencies
    }


def _package_blobs(session: Session, pks: list[int]) -> dict[int, tuple[str, int]]:
    """report pk -> the stored blob of its packages, which names their content: hosts
    of one package list share it, and the matcher matches that list once."""
    blob_ids = domain_blob_ids(session, pks, "packages")
    return {pk: ("packages-blob", blob_id) for pk, blob_id in blob_ids.items()}


def not_assessed(matcher: VulnMatcher | None, day: date) -> VulnSection:
    """No store (or no host counted): nothing could be told."""
    store = matcher is not None and matcher.reader is not None
    return VulnSection(
        status=VulnStatus.NOT_MATCHED if store else VulnStatus.NO_STORE,
        max_age_days=matcher.max_age_days if matcher is not None else None,
        feeds=_feeds(matcher, day) if matcher is not None else [],
        matched_hosts=[],
        unmatched_hosts=[],
        counts=None,
        items=None,
        kev_items=None,
        top_hosts=[],
        urgent=[],
    )


def _problem(problem: Problem | None) -> VulnHostProblem:
    if problem is not None and problem.cause is Cause.UNSUPPORTED:
        return VulnHostProblem.UNSUPPORTED
    if problem is not None and problem.cause is Cause.STALE:
        return VulnHostProblem.STALE
    return VulnHostProblem.NO_FACTS


def _feeds(matcher: VulnMatcher, day: date) -> list[VulnFeedRow]:
    if matcher.reader is None:
        return []
    rows = []
    for feed in matcher.reader.feeds:
        age = max((day - feed.generated_at.date()).days, 0)  # as the matcher measures it
        rows.append(
            VulnFeedRow(
                name=feed.name,
                generated_at=feed.generated_at,
                age_days=age,
                stale=age > matcher.max_age_days,
            )
        )
    return rows


def _section(
    max_age: float,
    feeds: list[VulnFeedRow],
    matched: list[_Matched],
    unmatched: list[VulnUnmatched],
    day: date,
) -> VulnSection:
    status = VulnStatus.ASSESSED
    if not matched:
        stale = any(u.problem is VulnHostProblem.STALE for u in unmatched)
        status = VulnStatus.STALE if stale else VulnStatus.NOT_MATCHED
    items = [item for host in matched for item in host.items]
    assessed = status is VulnStatus.ASSESSED
    return VulnSection(
        status=status,
        max_age_days=max_age,
        feeds=feeds,
        matched_hosts=[m.label for m in matched],
        unmatched_hosts=unmatched,
        counts=_counts(items) if assessed else None,
        items=len(items) if assessed else None,
        kev_items=sum(1 for i in items if i["kev"]) if assessed else None,
        top_hosts=_top_hosts(matched),
        urgent=_urgent(matched, day),
    )


def _counts(items: list[dict[str, Any]]) -> list[VulnCountRow]:
    by: Counter[tuple[str, str]] = Counter((i["severity"], i["state"]) for i in items)
    rows = []
    for severity in VendorSeverity:
        states = {state.value: by[(severity.value, state.value)] for state in State}
        rows.append(VulnCountRow(severity=severity.value, total=sum(states.values()), **states))
    return rows


def _top_hosts(matched: list[_Matched]) -> list[VulnHostRow]:
    rows = []
    for host in matched:
        fixable = [i for i in host.items if i["state"] == State.FIX_AVAILABLE.value]
        if fixable:
            rows.append(
                VulnHostRow(
                    host=host.label,
                    fix_available=len(fixable),
                    critical_high=sum(1 for i in fixable if i["severity"] in _URGENT_SEVERITIES),
                    kev=sum(1 for i in fixable if i["kev"]),
                )
            )
    rows.sort(key=lambda r: (-r.fix_available, -r.critical_high, r.host))
    return rows[:TOP_HOSTS]


def _urgent(matched: list[_Matched], day: date) -> list[VulnItemRow]:
    """KEV items in any state, and critical/high items with a fix available, one row
    per (CVE, package, versions, state) with the hosts it is open on."""
    groups: dict[tuple[str, str, str, str, str], list[tuple[str, Mapping[str, Any]]]] = defaultdict(
        list
    )
    for host in matched:
        for i in host.items:
            fixable = i["state"] == State.FIX_AVAILABLE.value
            if i["kev"] or (fixable and i["severity"] in _URGENT_SEVERITIES):
                key = (i["cve"], i["package"], i["installed_version"], i["fixed_version"] or "")
                groups[(*key, i["state"])].append((host.label, i))
    rows = []
    for (cve, package, installed, _fixed, state), found in groups.items():
        first = found[0][1]
        ages = [i["fix_age_days"] for _label, i in found if i["fix_age_days"] is not None]
        rows.append(
            VulnItemRow(
                cve=cve,
                package=package,
                installed_version=installed,
                fixed_version=first["fixed_version"],
                severity=first["severity"],
                state=state,
                kev=bool(first["kev"]),
                epss=first["epss"],
                hosts=sorted({label for label, _i in found}),
                fix_since=day - timedelta(days=max(ages)) if ages else None,
            )
        )
    rank = {s.value: n for n, s in enumerate(VendorSeverity)}
    rows.sort(
        key=lambda r: (
            not r.kev,
            r.state != State.FIX_AVAILABLE.value,
            rank.get(r.severity, len(rank)),
            r.fix_since or date.max,
            r.cve,
            r.package,
        )
    )
    return rows
