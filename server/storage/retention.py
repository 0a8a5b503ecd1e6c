"""Retention: facts history is kept `retention_days`; the latest facts of every host,
the reports its current results belong to, and every finding are kept regardless.

`prune` deletes, in batches (short transactions, so ingest is never blocked long):
reports received before the cutoff that are neither a host's latest nor the one its
current results were computed on (their rule results go with them, ON DELETE
CASCADE), then domain contents (`facts_blobs`) superseded before the cutoff.
It is safe on several replicas at once: every statement is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, union

from server.storage.database import Database
from server.storage.models import FactsBlob, Host, Report

BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    reports: int
    blobs: int


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
                session.execute(delete(Report).where(Report.id.in_(ids)))
        reports += len(ids)
        if len(ids) < BATCH:
            break
    while True:
        with database.write() as session:
            ids = list(
                session.scalars(
                    select(FactsBlob.id).where(FactsBlob.superseded_at < cutoff).limit(BATCH)
                )
            )
            if ids:
                result = session.execute(delete(FactsBlob).where(FactsBlob.id.in_(ids)))
                blobs += cast(CursorResult[Any], result).rowcount
        if len(ids) < BATCH:
            break
    return Pruned(reports, blobs)
