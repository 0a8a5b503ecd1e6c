"""Retention: facts history is kept `retention_days`; the latest facts of every host,
the reports its current results belong to, and every finding are kept regardless.

`prune` deletes, in batches (short transactions, so ingest is never blocked long):
reports received before the cutoff that are neither a host's latest nor the one its
current results were computed on (revision 0006: a rule result still in effect at a
report that stays is first moved to it; the others go with their report, ON DELETE
CASCADE), then domain contents (`facts_blobs`) superseded before the cutoff.
A blob superseded before the cutoff is referred to only by reports received before
it (a late report moves its blobs' `superseded_at` to its own arrival), so only by
reports deleted just before, except the kept ones: a kept results report may hold a
report map (revision 0008) its host's newer reports replaced (a new seq epoch, same
facts), so the maps of kept reports are never deleted.
It is safe on several replicas at once: every statement is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, union, update
from sqlalchemy.orm import Session

from server.storage.database import Database
from server.storage.models import FactsBlob, Host, Report, RuleResultRow

BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    reports: int
    blobs: int


def _rebase_results(session: Session, ids: list[int]) -> None:
    """Move the rule results first stored at the reports `ids` (about to be deleted)
    and still in effect at a later report of their host to the earliest such report:
    every report that stays reads the same results (revision 0006: stored on change),
    and the rows no report in their interval needs go with their report."""
    target = (
        select(func.min(Report.id))
        .where(
            Report.host_id == RuleResultRow.host_id,
            Report.id > RuleResultRow.report_pk,
            Report.id.not_in(ids),
        )
        .scalar_subquery()
    )
    session.execute(
        update(RuleResultRow)
        .where(
            RuleResultRow.report_pk.in_(ids),
            target.is_not(None),
            or_(RuleResultRow.until_pk.is_(None), target < RuleResultRow.until_pk),
        )
        .values(report_pk=target)
        .execution_options(synchronize_session=False)
    )


def prune(database: Database, now: datetime, days: int) -> Pruned:
    cutoff = now - timedelta(days=days)
    keep = union(
        select(Host.last_report_pk).where(Host.last_report_pk.is_not(None)),
        select(Host.results_report_pk).where(Host.results_report_pk.is_not(None)),
    ).subquery()
    reports = blobs = 0
    while True:
        with database.write() as session:
            ids = list(
                session.scalars(
                    select(Report.id)
                    .where(Report.received_at < cutoff, Report.id.not_in(select(keep.c[0])))
                    .limit(BATCH)
                )
            )
            if ids:
                _rebase_results(session, ids)
                session.execute(delete(Report).where(Report.id.in_(ids)))
        reports += len(ids)
        if len(ids) < BATCH:
            break
    while True:
        with database.write() as session:
            ids = list(
                session.scalars(
                    select(FactsBlob.id)
                    .where(
                        FactsBlob.superseded_at < cutoff,
                        FactsBlob.id.not_in(
                            select(Report.map_blob_id).where(
                                Report.id.in_(select(keep.c[0])), Report.map_blob_id.is_not(None)
                            )
                        ),
                    )
                    .limit(BATCH)
                )
            )
            if ids:
                result = session.execute(delete(FactsBlob).where(FactsBlob.id.in_(ids)))
                blobs += cast(CursorResult[Any], result).rowcount
        if len(ids) < BATCH:
            break
    return Pruned(reports, blobs)
