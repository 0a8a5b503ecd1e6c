"""Read-side queries behind the read API: hosts, findings, scores, remediation times.

Plain functions over a session, returning JSON-ready dicts, so the HTTP layer stays
thin and every replica answers the same from the same database (nothing here reads
process memory). `server.read.views` declares the shape of each answer; the API
validates every answer against it.

`scope` (an agency id, from an agency-scoped API token) limits every answer to that
agency in the SQL itself, so a router that forgot a check still cannot leak another
agency: its hosts are "not found", and rankings hold only the scope's agency. Its
rank is the one among every agency (the evaluation's ranking is public; the other
agencies' scores and names are not), so the ranking alone reads every agency.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from rules.language.model import Localized, Severity
from rules.policy.frameworks import Framework
from rules.policy.scopes import Scopes
from rules.policy.scoring import score_results
from rules.results import RuleResult, Status
from server.read.levels import host_levels
from server.storage.fact_store import load_facts
from server.storage.models import Agency, Finding, FindingStatus, Host, Report, RuleResultRow
from server.storage.rule_results import in_effect

_NO_TITLE = Localized("", "")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class Page:
    limit: int = 100
    offset: int = 0


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def host_summary(host: Host, stale_before: datetime) -> dict[str, Any]:
    return {
        "agent_id": host.agent_id,
        "agency": host.agency_id,
        "hostname": host.hostname,
        "label": host.label,
        "os": host.os_pretty_name,
        "agent_version": host.agent_version,
        "last_seq": host.last_seq,
        "seq_epoch": host.seq_epoch,
        "last_collected_at": _time(host.last_collected_at),
        "last_received_at": _time(host.last_received_at),
        "stale": host.last_received_at < stale_before,
        "score": host.score_ratio,
        "passed": host.passed_count,
        "failed": host.failed_count,
        "errors": host.error_count,
        "failing": {
            "critical": host.failing_critical,
            "high": host.failing_high,
            "medium": host.failing_medium,
            "low": host.failing_low,
            "info": host.failing_info,
        },
    }


def list_hosts(
    session: Session,
    stale_before: datetime,
    page: Page,
    *,
    agency: str | None = None,
    os: str | None = None,
    stale: bool | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    query = _scoped(select(Host), scope)
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    if os is not None:
        query = query.where(Host.os_pretty_name.ilike(f"%{_escape_like(os)}%", escape="\\"))
    if stale is True:
        query = query.where(Host.last_received_at < stale_before)
    elif stale is False:
        query = query.where(Host.last_received_at >= stale_before)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Host.agency_id, Host.label).limit(page.limit).offset(page.offset)
    )
    return {
        "items": [host_summary(host, stale_before) for host in rows],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _scoped(query: Select[*Ts], scope: str | None) -> Select[*Ts]:
    """`query` (which selects or joins `Host`) limited to the scope's agency."""
    return query if scope is None else query.where(Host.agency_id == scope)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def host_detail(
    session: Session,
    agent_id: str,
    stale_before: datetime,
    history: int = 200,
    *,
    scope: str | None = None,
) -> dict[str, Any] | None:
    """The host's detail; None when it does not exist or is outside `scope`."""
    query = _scoped(select(Host).where(Host.agent_id == agent_id), scope)
    host = session.scalars(query).one_or_none()
    if host is None:
        return None
    detail = host_summary(host, stale_before)
    latest = session.get(Report, host.last_report_pk) if host.last_report_pk else None
    if latest is None:  # hosts stored before revision 0002
        latest = session.scalars(
            select(Report)
            .where(Report.host_id == host.id, Report.report_id == host.last_report_id)
            .limit(1)
        ).one_or_none()
    detail["facts"] = load_facts(session, latest) if latest is not None else None
    results_pk = host.results_report_pk or (latest.id if latest is not None else None)
    detail["results"] = [
        {
            "rule_id": row.rule_id,
            "severity": row.severity,
            "status": row.status,
            "items": row.items,
            "errors": row.errors,
        }
        for _at, row in (
            session.execute(in_effect([results_pk], RuleResultRow)) if results_pk else ()
        )
    ]
    findings = session.scalars(
        select(Finding)
        .where(Finding.host_id == host.id)
        .order_by(Finding.status, Finding.rule_id, Finding.item_key)
    )
    detail["findings"] = [finding_dict(f, host) for f in findings]
    reports = session.execute(
        select(Report.seq, Report.collected_at, Report.received_at, Report.score_ratio)
        .where(Report.host_id == host.id, Report.applied.is_(True))
        .order_by(Report.collected_at.desc())
        .limit(history)
    ).all()
    detail["score_history"] = [
        {"seq": seq, "collected_at": _time(collected), "received_at": _time(received), "score": s}
        for seq, collected, received, s in reversed(reports)
    ]
    return detail


def finding_dict(finding: Finding, host: Host) -> dict[str, Any]:
    # Age as observed (until resolved, or until last seen): the same on every replica
    # and at every moment, unlike "now - first seen".
    end = finding.resolved_at or finding.last_seen
    return {
        "agent_id": host.agent_id,
        "host": host.label,
        "agency": host.agency_id,
        "rule_id": finding.rule_id,
        "item_key": finding.item_key,
        "severity": finding.severity,
        "status": finding.status,
        "first_seen": _time(finding.first_seen),
        "last_seen": _time(finding.last_seen),
        "resolved_at": _time(finding.resolved_at),
        "reopened_count": finding.reopened_count,
        "age_seconds": max(0.0, (end - finding.first_seen).total_seconds()),
        "evidence": finding.evidence,
        "message": finding.message,
    }


def list_findings(
    session: Session,
    now: datetime,
    page: Page,
    *,
    agency: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    status: FindingStatus | None = None,
    min_age_days: float | None = None,
    agent_id: str | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    query = _scoped(select(Finding, Host).join(Host, Finding.host_id == Host.id), scope)
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    if agent_id is not None:
        query = query.where(Host.agent_id == agent_id)
    if rule is not None:
        query = query.where(Finding.rule_id == rule)
    if severity is not None:
        query = query.where(Finding.severity == severity)
    if status is not None:
        query = query.where(Finding.status == status)
    if min_age_days is not None:
        query = query.where(Finding.first_seen <= now - timedelta(days=min_age_days))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Finding.first_seen, Finding.id).limit(page.limit).offset(page.offset)
    ).all()
    return {
        "items": [finding_dict(f, h) for f, h in rows],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _latest_results(
    session: Session, agency: str | None = None, scope: str | None = None
) -> dict[int, list[tuple[str, str, str]]]:
    """host id -> [(rule_id, severity, status)] of the host's current results."""
    query = select(Host.id, RuleResultRow.rule_id, RuleResultRow.severity, RuleResultRow.status)
    # The rows in effect at the host's results report (revision 0006: stored on change).
    query = _scoped(
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
            _scoped(
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
    rows = session.execute(_scoped(query, scope)).all()
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
