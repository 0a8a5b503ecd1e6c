"""The audit's history-derived parts: time to remediate over the period, the waivers
that can apply to an agency on the cut-off day, and the hosts left out and why."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.policy.waivers import Waiver
from server.read.audit_views import ExcludedHost, ExclusionReason, Remediation, WaiverRow
from server.storage.models import Finding, Host, Report


def excluded_hosts(
    session: Session, agency: str, counted: set[int], cutoff: datetime
) -> list[ExcludedHost]:
    """Hosts that reported before the cut-off but are not counted (no results then)."""
    # EXISTS on the reports' (host_id, seq) index: the agency's reports only, not a
    # pass over every report of the province per agency.
    reported = (
        select(Report.id).where(Report.host_id == Host.id, Report.collected_at < cutoff).exists()
    )
    rows = session.execute(
        select(Host.id, Host.label, Host.agent_id)
        .where(Host.agency_id == agency, reported)
        .order_by(Host.label)
    )
    return [
        ExcludedHost(host=label, agent_id=agent_id, reason=ExclusionReason.NOT_EVALUATED)
        for host_id, label, agent_id in rows
        if host_id not in counted
    ]


def remediation(session: Session, agency: str, cutoff: datetime, previous: datetime) -> Remediation:
    rows = session.execute(
        select(Finding.first_seen, Finding.resolved_at)
        .join(Host, Finding.host_id == Host.id)
        .where(Host.agency_id == agency, Finding.first_seen < cutoff)
    ).all()
    durations = []
    open_ages = []
    for first_seen, resolved_at in rows:
        if resolved_at is not None and previous <= resolved_at < cutoff:
            durations.append((resolved_at - first_seen).total_seconds() / 86400)
        elif resolved_at is None or resolved_at >= cutoff:
            open_ages.append((cutoff - first_seen).total_seconds() / 86400)
    return Remediation(
        resolved=len(durations),
        median_days=statistics.median(durations) if durations else None,
        open=len(open_ages),
        oldest_open_days=max(open_ages) if open_ages else None,
    )


def waiver_rows(waivers: Iterable[Waiver], agency: str, cutoff: datetime) -> list[WaiverRow]:
    # The cut-off is exclusive: the last day it covers is the day before midnight.
    day = (cutoff - timedelta(microseconds=1)).date()
    return [
        WaiverRow(
            id=w.id,
            rule_id=w.rule_id,
            item=w.item,
            host=w.selector.host,
            justification=w.justification,
            approved_by=w.approved_by,
            expires=w.expires,
            in_force=w.active_on(day),
        )
        for w in sorted(waivers, key=lambda w: (w.expires, w.id))
        if w.selector.agency in (None, agency)
    ]
