"""Read-side queries behind the read API: hosts and findings (the scores, ranking and
remediation times are in `server.read.rankings`, re-exported here).

Plain functions over a session, returning JSON-ready dicts, so the HTTP layer stays
thin and every replica answers the same from the same database (nothing here reads
process memory). `server.read.views` declares the shape of each answer; the API
validates every answer against it.

`scope` (an agency-scoped API token's agency) limits every answer to that agency in
the SQL itself (`server.read.scope`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.read.rankings import (
    agencies_ranked,
    pooled_score,
    remediation_times,
    requirement_scores,
)
from server.read.scope import scoped
from server.storage.fact_store import load_facts
from server.storage.findings import last_seen_of
from server.storage.models import Finding, FindingStatus, Host, Report, RuleResultRow
from server.storage.rule_results import in_effect

# The scores' functions, where the read API and its callers have always found them.
__all__ = [
    "Page",
    "agencies_ranked",
    "finding_dict",
    "host_detail",
    "host_summary",
    "list_findings",
    "list_hosts",
    "pooled_score",
    "remediation_times",
    "requirement_scores",
]


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
        "spool_dropped_reports": host.spool_dropped_reports or 0,
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
    query = scoped(select(Host), scope)
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
    query = scoped(select(Host).where(Host.agent_id == agent_id), scope)
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
    last_seen = last_seen_of(
        finding.status, finding.last_seen, host.results_collected_at, host.last_collected_at
    )
    # Age as observed (until resolved, or until last seen): the same on every replica
    # and at every moment, unlike "now - first seen".
    end = finding.resolved_at or last_seen
    return {
        "agent_id": host.agent_id,
        "host": host.label,
        "agency": host.agency_id,
        "rule_id": finding.rule_id,
        "item_key": finding.item_key,
        "severity": finding.severity,
        "status": finding.status,
        "first_seen": _time(finding.first_seen),
        "last_seen": _time(last_seen),
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
    query = scoped(select(Finding, Host).join(Host, Finding.host_id == Host.id), scope)
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
