"""The audit's findings: those first seen before the cut-off and not resolved by then.

Read as a stream in the document's order (most severe first, then host, rule, item),
sorted by the database and fetched a page at a time (`yield_per`; a server-side
cursor on PostgreSQL), so writing the findings of a province holds one page of them.
The counts and the most urgent actions are aggregated by the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from rules.language.model import OsFamily, RuleSet, Severity
from server.read.audit_compliance import text_of
from server.read.audit_views import AuditFinding, SeverityCounts, UrgentAction
from server.storage.models import Finding, FindingStatus, Host

URGENT_ACTIONS = 10
PAGE = 500  # findings fetched at a time

_RANK = case({s.value: s.rank for s in Severity}, value=Finding.severity, else_=-1)


def _in_force(agency: str, cutoff: datetime) -> ColumnElement[bool]:
    # Resolved after the cut-off: it was failing at the cut-off.
    return (
        (Host.agency_id == agency)
        & (Finding.first_seen < cutoff)
        & ((Finding.resolved_at.is_(None)) | (Finding.resolved_at >= cutoff))
    )


def _text_order(session: Session, column: Any) -> Any:
    """Code point order on every database (Python's, which the tests compare with):
    PostgreSQL's default collation follows the locale, SQLite's compares bytes."""
    bind = session.get_bind()
    return column.collate("C") if bind.dialect.name == "postgresql" else column


def stream_findings(
    session: Session,
    ruleset: RuleSet,
    cutoff: datetime,
    agency: str,
    severity: Severity | None = None,
    *,
    families: Mapping[int, OsFamily | None] | None = None,
) -> Iterator[AuditFinding]:
    """The agency's findings at the cut-off (of one severity, or all), in order;
    each with its rule's fix command for its host's family (`families`: host id ->
    family, read by the caller; a host not in it has no command)."""
    families = families or {}
    query = (
        select(
            Finding.id,
            Host.id,
            Finding.rule_id,
            Finding.severity,
            Finding.status,
            Finding.item_key,
            Finding.evidence,
            Finding.message,
            Finding.first_seen,
            Host.label,
            Host.agent_id,
        )
        .join(Host, Finding.host_id == Host.id)
        .where(_in_force(agency, cutoff))
        .order_by(
            _RANK.desc(),
            _text_order(session, Host.label),
            _text_order(session, Finding.rule_id),
            _text_order(session, Finding.item_key),
            Finding.id,
        )
        .execution_options(yield_per=PAGE)
    )
    if severity is not None:
        query = query.where(Finding.severity == severity.value)
    for row in session.execute(query):
        (
            _id,
            host_id,
            rule_id,
            sev,
            status,
            item_key,
            evidence,
            message,
            first_seen,
            label,
            agent_id,
        ) = row
        rule = ruleset.get(rule_id)
        # Whether a waiver covered a finding resolved after the cut-off is not kept,
        # so it is shown open (never hidden as waived).
        waived = status is FindingStatus.WAIVED
        yield AuditFinding(
            agency=agency,
            host=label,
            agent_id=agent_id,
            rule_id=rule_id,
            title=text_of(rule.title if rule else None),
            severity=Severity(sev),
            status=FindingStatus.WAIVED if waived else FindingStatus.OPEN,
            item_key=item_key,
            evidence=evidence,
            message=text_of(message),
            remediation=text_of(rule.remediation if rule else None),
            fix=rule.fix_for(families.get(host_id)) if rule else None,
            first_seen=first_seen,
            age_days=max(0.0, (cutoff - first_seen).total_seconds() / 86400),
        )


def count_findings(
    session: Session, cutoff: datetime, agency: str
) -> dict[tuple[Severity, FindingStatus], int]:
    """(severity, open or waived) -> findings at the cut-off."""
    rows = session.execute(
        select(Finding.severity, Finding.status, func.count(Finding.id))
        .join(Host, Finding.host_id == Host.id)
        .where(_in_force(agency, cutoff))
        .group_by(Finding.severity, Finding.status)
    )
    counts: dict[tuple[Severity, FindingStatus], int] = {}
    for severity, status, count in rows:
        shown = FindingStatus.WAIVED if status is FindingStatus.WAIVED else FindingStatus.OPEN
        key = (Severity(severity), shown)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def severity_counts(counts: dict[tuple[Severity, FindingStatus], int]) -> SeverityCounts:
    """Open findings by severity."""
    return SeverityCounts(
        **{s.value: n for (s, status), n in counts.items() if status is FindingStatus.OPEN}
    )


def urgent_actions(
    session: Session, ruleset: RuleSet, cutoff: datetime, agency: str
) -> list[UrgentAction]:
    """The rules with open findings, most severe first, then by hosts affected, then
    the oldest; at most `URGENT_ACTIONS`."""
    rows = session.execute(
        select(
            Finding.rule_id,
            func.max(_RANK),
            func.count(func.distinct(Finding.host_id)),
            func.count(Finding.id),
            func.min(Finding.first_seen),
        )
        .join(Host, Finding.host_id == Host.id)
        .where(_in_force(agency, cutoff), Finding.status != FindingStatus.WAIVED)
        .group_by(Finding.rule_id)
    )
    by_rank = {s.rank: s for s in Severity}
    actions = []
    for rule_id, rank, hosts, findings, oldest in rows:
        rule = ruleset.get(rule_id)
        actions.append(
            UrgentAction(
                rule_id=rule_id,
                title=text_of(rule.title if rule else None),
                severity=by_rank[int(rank)],
                hosts=int(hosts),
                findings=int(findings),
                oldest_first_seen=oldest,
                remediation=text_of(rule.remediation if rule else None),
            )
        )
    actions.sort(key=lambda a: (-a.severity.rank, -a.hosts, a.oldest_first_seen, a.rule_id))
    return actions[:URGENT_ACTIONS]
