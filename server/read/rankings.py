"""Read-side scores behind the read API: agencies ranked by their pooled score,
framework requirement scores at the hosts' security levels, time to remediate.

Plain functions over a session returning JSON-ready dicts (shapes in
`server.read.views`), each limited to a token's agency by `server.read.scope`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rules.language.model import Localized, Severity
from rules.policy.frameworks import Framework
from rules.policy.scopes import Scopes
from rules.policy.scoring import score_results
from rules.results import RuleResult, Status
from server.read.levels import host_levels
from server.read.scope import scoped
from server.storage.models import Agency, Finding, FindingStatus, Host, RuleResultRow

_NO_TITLE = Localized("", "")


def _latest_results(
    session: Session, agency: str | None = None, scope: str | None = None
) -> dict[int, list[tuple[str, str, str]]]:
    """host id -> [(rule_id, severity, status)] of the host's current results."""
    query = select(Host.id, RuleResultRow.rule_id, RuleResultRow.severity, RuleResultRow.status)
    # The rows in effect at the host's results report (revision 0006: stored on change).
    query = scoped(
        query.join(
            RuleResultRow,
            (RuleResultRow.host_id == Host.id)
            & (RuleResultRow.report_pk <= Host.results_report_pk)
            & or_(
                RuleResultRow.until_pk.is_(None),
                RuleResultRow.until_pk > Host.results_report_pk,
            ),
        ),
        scope,
    )
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    results: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for host_id, rule_id, severity, status in session.execute(query):
        results[host_id].append((rule_id, severity, status))
    return results


def pooled_score(
    rows: Iterable[tuple[str, str, str]], weights: Mapping[Severity, float]
) -> float | None:
    """An agency's score: the host formula over the pooled results of its hosts."""
    results = [
        RuleResult(rule_id, Severity(severity), Status(status), _NO_TITLE)
        for rule_id, severity, status in rows
    ]
    return score_results(results, weights).ratio


def agencies_ranked(
    session: Session,
    weights: Mapping[Severity, float],
    stale_before: datetime,
    *,
    scope: str | None = None,
) -> list[dict[str, Any]]:
    """Agencies best first, each with its rank and the number ranked; with a scope,
    only that agency, at its rank among every agency (the rank is public, the other
    agencies' entries are not returned)."""
    results = _latest_results(session)
    hosts_by_agency: dict[str, list[Host]] = defaultdict(list)
    for host in session.scalars(select(Host)):
        hosts_by_agency[host.agency_id].append(host)
    ranked: list[dict[str, Any]] = []
    for agency in session.scalars(select(Agency)):
        hosts = hosts_by_agency.get(agency.id, [])
        pooled = [row for host in hosts for row in results.get(host.id, [])]
        ranked.append(
            {
                "agency": agency.id,
                "name": agency.name,
                "hosts": len(hosts),
                "stale_hosts": sum(1 for h in hosts if h.last_received_at < stale_before),
                "score": pooled_score(pooled, weights),
                "failing": sum(h.failed_count for h in hosts),
                "open_findings": 0,
            }
        )
    open_counts = dict(
        session.execute(
            scoped(
                select(Host.agency_id, func.count(Finding.id))
                .join(Finding, Finding.host_id == Host.id)
                .where(Finding.status == FindingStatus.OPEN),
                scope,  # only the entries returned need it
            ).group_by(Host.agency_id)
        ).all()
    )
    for entry in ranked:
        entry["open_findings"] = int(open_counts.get(entry["agency"], 0))
    # Unknown scores last; ties by id so every replica returns the same order.
    ranked.sort(key=lambda e: (e["score"] is None, -(e["score"] or 0.0), e["agency"]))
    for rank, entry in enumerate(ranked, start=1):
        entry["rank"] = rank
        entry["ranked_agencies"] = len(ranked)
    return [entry for entry in ranked if scope is None or entry["agency"] == scope]


def requirement_scores(
    session: Session,
    frameworks: Iterable[Framework] | None,
    framework_id: str,
    weights: Mapping[Severity, float],
    agency: str | None,
    *,
    scope: str | None = None,
    scopes: Scopes | None = None,
) -> list[dict[str, Any]] | None:
    """Per requirement of a framework: the pooled score of the rules mapped to it,
    over the hosts whose security level (from `scopes`) the requirement belongs to.

    A requirement no host is judged by (every host has a known level and none of
    them is one of the requirement's) is not applicable: no score, `applicable`
    false; that is neither "not met" nor "not assessed". A host of unknown level is
    judged by every requirement (see `Requirement.applies_at`).
    """
    framework = _framework(frameworks, framework_id)
    if framework is None:
        return None
    latest = _latest_results(session, agency, scope)
    levels = host_levels(session, scopes, agency=agency, scope=scope)
    # Rows by (level, rule) and hosts by level: at most six levels (1-5, unknown),
    # so each requirement pools a few lists instead of visiting every host.
    by_rule: dict[tuple[int | None, str], list[tuple[str, str, str]]] = defaultdict(list)
    hosts_at: dict[int | None, int] = defaultdict(int)
    for host_id, host_rows in latest.items():
        level = levels.get(host_id)
        hosts_at[level] += 1
        for row in host_rows:
            by_rule[(level, row[0])].append(row)
    answer = []
    for requirement in framework.requirements:
        judged = [level for level in hosts_at if requirement.applies_at(level)]
        pooled = [
            row
            for level in judged
            for rule_id in requirement.rules
            for row in by_rule.get((level, rule_id), [])
        ]
        answer.append(
            {
                "requirement": requirement.id,
                "rules": list(requirement.rules),
                "levels": list(requirement.levels),
                "applicable": bool(judged) or not latest,
                "hosts": sum(hosts_at[level] for level in judged),
                "score": pooled_score(pooled, weights),
                "failing": sum(1 for row in pooled if row[2] == Status.FAIL.value),
            }
        )
    return answer


def _framework(frameworks: Iterable[Framework] | None, framework_id: str) -> Framework | None:
    for framework in frameworks or ():
        if framework.id == framework_id:
            return framework
    return None


def remediation_times(
    session: Session,
    by: Literal["agency", "rule"],
    now: datetime,
    *,
    scope: str | None = None,
) -> list[dict[str, Any]]:
    """Time to remediate, grouped by agency or rule: resolved count, median and mean
    hours from first seen to resolved, and how many are still open (and the oldest)."""
    key = Host.agency_id if by == "agency" else Finding.rule_id
    query = select(key, Finding.status, Finding.first_seen, Finding.resolved_at).join(
        Host, Finding.host_id == Host.id
    )
    rows = session.execute(scoped(query, scope)).all()
    groups: dict[str, dict[str, Any]] = {}
    for name, status, first_seen, resolved_at in rows:
        group = groups.setdefault(name, {"durations": [], "open": 0, "oldest_open": 0.0})
        if status is FindingStatus.RESOLVED and resolved_at is not None:
            group["durations"].append((resolved_at - first_seen).total_seconds() / 3600)
        elif status is FindingStatus.OPEN:
            group["open"] += 1
            age = (now - first_seen).total_seconds() / 3600
            group["oldest_open"] = max(group["oldest_open"], age)
    answer = []
    for name in sorted(groups):
        durations = groups[name]["durations"]
        answer.append(
            {
                by: name,
                "resolved": len(durations),
                "median_hours": statistics.median(durations) if durations else None,
                "mean_hours": statistics.fmean(durations) if durations else None,
                "open": groups[name]["open"],
                "oldest_open_hours": groups[name]["oldest_open"] if groups[name]["open"] else None,
            }
        )
    return answer
