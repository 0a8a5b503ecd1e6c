"""Rule results stored when they change, and resolved per report (revision 0006).

A row is the outcome of one rule on one host from the report it was first produced
at (`report_pk`) until a report that stored a different outcome (`until_pk`,
exclusive; NULL while in effect). An evaluation of the host's newest report writes a
row only for a rule whose outcome digest (severity, status, items with their
evidence, errors) differs from the row in effect, and ends the replaced row in the
same transaction; a rule no longer in the policy has its row ended. A policy change
writes the whole set (`full`). A report evaluated as history (not the host's newest,
`chain=False`) stores its whole set, valid for itself only, so it never changes the
results in effect for other reports. Rows written before revision 0006 are of that
kind too.

The results in effect for report R of host H: H's rows with report_pk <= R and
(until_pk NULL or until_pk > R); for a history report, only its own rows.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, or_, select
from sqlalchemy.orm import Session, aliased

from rules.results import RuleResult
from server.storage.models import Report, RuleResultRow

# The table: the write path runs Core statements on the session's connection, so the
# ORM adds no per-statement work (no entities, no session synchronisation).
_TABLE = RuleResultRow.metadata.tables[RuleResultRow.__tablename__]


def outcome_digest(severity: str, status: str, items: list[Any], errors: list[Any]) -> str:
    """128 bits of SHA-256 over the canonical outcome: equal iff the stored row would be."""
    canonical = json.dumps(
        [severity, status, items, errors], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def write_results(
    session: Session,
    host_id: int,
    report_pk: int,
    results: Sequence[RuleResult],
    *,
    chain: bool,
    full: bool = False,
) -> int:
    """Store `results` of `report_pk`; returns how many rows were written."""
    rows: list[dict[str, Any]] = []
    for position, result in enumerate(results):
        rows.append(
            {
                "report_pk": report_pk,
                "host_id": host_id,
                "rule_id": result.rule_id,
                "severity": result.severity.value,
                "status": result.status.value,
                "digest": _digest_of(result),
                "position": position,
                # History: valid at this report only (pks are integers).
                "until_pk": None if chain else report_pk + 1,
                "_result": result,
            }
        )
    connection = session.connection()
    if chain:
        rows = _changed(connection, host_id, report_pk, rows, full)
    for row in rows:
        # Items serialised only for the rows written.
        result = row.pop("_result")
        row["items"] = [item.to_dict() for item in result.items]
        row["errors"] = list(result.errors)
    if rows:
        connection.execute(_TABLE.insert(), rows)
    return len(rows)


# Outcome digests by result object: a result carried forward (server.evaluation.carry)
# is the very object evaluated before, so its items are not serialised and hashed
# again at every changed report. Entries leave with their object (weak references).
_DIGESTS: dict[int, tuple[weakref.ref[RuleResult], str]] = {}


def _digest_of(result: RuleResult) -> str:
    key = id(result)
    known = _DIGESTS.get(key)
    if known is not None and known[0]() is result:
        return known[1]
    digest = outcome_digest(
        result.severity.value,
        result.status.value,
        [item.to_dict() for item in result.items],
        list(result.errors),
    )
    _DIGESTS[key] = (weakref.ref(result, lambda _gone: _DIGESTS.pop(key, None)), digest)
    return digest


def _changed(
    connection: Connection, host_id: int, report_pk: int, rows: list[dict[str, Any]], full: bool
) -> list[dict[str, Any]]:
    """The rows to insert; ends (or, when produced at this same report, deletes) the
    rows in effect that they replace and those of rules no longer evaluated."""
    current = {
        rule_id: (row_id, first, digest)
        for row_id, rule_id, first, digest in connection.execute(
            select(_TABLE.c.id, _TABLE.c.rule_id, _TABLE.c.report_pk, _TABLE.c.digest).where(
                _TABLE.c.host_id == host_id, _TABLE.c.until_pk.is_(None)
            )
        )
    }
    wanted = {row["rule_id"] for row in rows}
    changed = [
        row
        for row in rows
        if full or row["rule_id"] not in current or current[row["rule_id"]][2] != row["digest"]
    ]
    replaced = [current[row["rule_id"]] for row in changed if row["rule_id"] in current]
    replaced += [entry for rule_id, entry in current.items() if rule_id not in wanted]
    # A row first produced at this very report (re-evaluation of the same report) is
    # replaced outright: ending it at itself would leave an empty interval.
    same = [row_id for row_id, first, _digest in replaced if first == report_pk]
    ended = [row_id for row_id, first, _digest in replaced if first != report_pk]
    if same:
        connection.execute(_TABLE.delete().where(_TABLE.c.id.in_(same)))
    if ended:
        connection.execute(_TABLE.update().where(_TABLE.c.id.in_(ended)).values(until_pk=report_pk))
    return changed


def in_effect(report_pks: Sequence[int], *columns: Any) -> Select[Any]:
    """SELECT report pk (the one asked for), then `columns` of every row in effect for
    each of `report_pks`, in the policy's order."""
    at = aliased(Report)
    return (
        select(at.id, *columns)
        .join(
            RuleResultRow,
            (RuleResultRow.host_id == at.host_id)
            & (RuleResultRow.report_pk <= at.id)
            & or_(RuleResultRow.until_pk.is_(None), RuleResultRow.until_pk > at.id)
            & or_(at.applied.is_(True), RuleResultRow.report_pk == at.id),
        )
        .where(at.id.in_(report_pks))
        .order_by(at.id, RuleResultRow.position, RuleResultRow.id)
    )


def has_results(report: Any) -> Any:
    """EXISTS: some rule result is in effect for `report` (the Report entity or an
    alias of it, correlated): it was evaluated and its results were not removed."""
    return (
        select(RuleResultRow.id)
        .where(
            RuleResultRow.host_id == report.host_id,
            RuleResultRow.report_pk <= report.id,
            or_(RuleResultRow.until_pk.is_(None), RuleResultRow.until_pk > report.id),
            or_(report.applied.is_(True), RuleResultRow.report_pk == report.id),
        )
        .exists()
    )
