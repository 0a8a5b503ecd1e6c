"""The findings lifecycle: one finding per (host, rule, item key), kept over time.

Called with the results of a host's newest report, inside the ingest transaction:
- a failing item opens a finding, refreshes an open one, or reopens a resolved one;
- an open finding whose item no longer fails is resolved, but only when its rule was
  actually judged (pass, fail, not applicable). An `error` says nothing about the
  items it could not see, so it resolves nothing (its certain violations still
  count);
- a failing item covered by an active waiver is a `waived` finding: still seen and
  dated (first seen stays the day it first failed), not counted as open; when the
  waiver expires the same finding is `open` again;
- an open finding of a rule that is no longer in the rule set is resolved (the
  results are always those of the whole policy).
Item keys longer than ITEM_KEY_MAX characters are cut and suffixed with a hash of
the whole key, so the unique index (host, rule, item key) never exceeds PostgreSQL's
index row limit and distinct long keys stay distinct.
Times are the report's collected_at: when the host was observed, not when the
report happened to arrive (an agent may deliver from its spool hours later).
A report whose facts did not change writes no finding at all (on PostgreSQL each
rewrite is a new row version): the host's `results_collected_at` and
`last_collected_at` imply when its active findings were last seen (`last_seen_of`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from rules.results import ItemResult, RuleResult, Status
from server.storage.models import Finding, FindingStatus

ITEM_KEY_MAX = 512
_HASH_CHARS = 16
_JUDGED = {Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.WAIVED}
_REPORTS_VIOLATIONS = {Status.FAIL, Status.ERROR, Status.WAIVED}
# The table: every statement here is Core, run on the session's connection, so the
# ORM adds no per-statement work (no entities, no session synchronisation).
_TABLE = Finding.metadata.tables[Finding.__tablename__]
# A rewrite by primary key, executemany: `_id` names the row (not a column's name).
_REWRITE = (
    _TABLE.update()
    .where(_TABLE.c.id == bindparam("_id"))
    .values(
        status=bindparam("status"),
        severity=bindparam("severity"),
        last_seen=bindparam("last_seen"),
        resolved_at=bindparam("resolved_at"),
        reopened_count=bindparam("reopened_count"),
        evidence=bindparam("evidence"),
        message=bindparam("message"),
    )
)


@dataclass
class FindingChanges:
    opened: int = 0
    refreshed: int = 0
    reopened: int = 0
    resolved: int = 0


# Ids per IN list: well under every database's bound-parameter limit.
_ID_BATCH = 500


@dataclass
class _Known:
    """One stored finding, as much of it as the lifecycle compares (no ORM row)."""

    id: int
    status: FindingStatus
    severity: str
    reopened_count: int
    evidence: dict[str, Any]
    message: dict[str, Any]


def update_findings(
    session: Session, host_id: int, results: Iterable[RuleResult], observed_at: datetime
) -> FindingChanges:
    """Apply the lifecycle with set-based statements: the host's findings are read as
    plain columns, new ones inserted in one statement, those only seen again get
    `last_seen` in one UPDATE, and only findings whose state, severity, evidence or
    message changed are rewritten row by row."""
    changes = FindingChanges()
    connection = session.connection()
    existing: defaultdict[str, dict[str, _Known]] = defaultdict(dict)
    columns = select(
        _TABLE.c.id,
        _TABLE.c.rule_id,
        _TABLE.c.item_key,
        _TABLE.c.status,
        _TABLE.c.severity,
        _TABLE.c.reopened_count,
        _TABLE.c.evidence,
        _TABLE.c.message,
    ).where(_TABLE.c.host_id == host_id)
    for row in connection.execute(columns):
        existing[row.rule_id][row.item_key] = _Known(
            row.id, row.status, row.severity, row.reopened_count, row.evidence, row.message
        )
    results = list(results)
    inserts: list[dict[str, Any]] = []
    rewrites: list[dict[str, Any]] = []
    seen_again: list[int] = []
    resolved = _removed_rule_findings(existing, results)
    for result in results:
        known = existing.get(result.rule_id, {})
        failing = _failing_items(result) if result.status in _REPORTS_VIOLATIONS else {}
        for key, item in failing.items():
            waived = item.waiver is not None or result.status is Status.WAIVED
            status = FindingStatus.WAIVED if waived else FindingStatus.OPEN
            message = item.message.to_dict()
            found = known.get(key)
            if found is None:
                inserts.append(_new_finding(host_id, result, key, item, observed_at, status=status))
                changes.opened += 1
                continue
            reopened = found.status is FindingStatus.RESOLVED
            if reopened:
                changes.reopened += 1
            else:
                changes.refreshed += 1
            if (
                reopened
                or found.status is not status
                or found.severity != result.severity.value
                or found.evidence != item.evidence
                or found.message != message
            ):
                rewrites.append(
                    {
                        "_id": found.id,
                        "status": status,
                        "severity": result.severity.value,
                        "last_seen": observed_at,
                        "resolved_at": None,
                        "reopened_count": found.reopened_count + (1 if reopened else 0),
                        "evidence": item.evidence,
                        "message": message,
                    }
                )
            else:
                seen_again.append(found.id)
        if result.status not in _JUDGED:
            continue
        resolved.extend(
            finding.id
            for key, finding in known.items()
            if finding.status.active and key not in failing
        )
    changes.resolved += len(resolved)
    if inserts:
        connection.execute(_TABLE.insert(), inserts)
    if rewrites:
        connection.execute(_REWRITE, rewrites)
    _set_by_ids(connection, seen_again, last_seen=observed_at)
    _set_by_ids(connection, resolved, status=FindingStatus.RESOLVED, resolved_at=observed_at)
    return changes


def _set_by_ids(connection: Connection, ids: list[int], **values: Any) -> None:
    for start in range(0, len(ids), _ID_BATCH):
        connection.execute(
            _TABLE.update().where(_TABLE.c.id.in_(ids[start : start + _ID_BATCH])).values(**values)
        )


def _removed_rule_findings(
    existing: dict[str, dict[str, _Known]], results: list[RuleResult]
) -> list[int]:
    """The active findings of rules that are no longer in the results: to resolve."""
    evaluated_rules = {result.rule_id for result in results}
    return [
        finding.id
        for rule_id, known in existing.items()
        if rule_id not in evaluated_rules
        for finding in known.values()
        if finding.status.active
    ]


def last_seen_of(
    status: FindingStatus,
    stored: datetime,
    results_collected_at: datetime | None,
    last_collected_at: datetime,
) -> datetime:
    """When the finding was last seen failing, as of the host's newest report.

    A report whose facts did not change is not evaluated and writes no finding: an
    active finding seen at the host's current evaluation (stored `last_seen` at
    least `results_collected_at`) was seen again by every later report, up to the
    host's `last_collected_at`. One that evaluation did not see (its rule was in
    error) keeps the date it was really seen; so does a resolved one."""
    if status.active and results_collected_at is not None and stored >= results_collected_at:
        return max(stored, last_collected_at)
    return stored


def capped_key(key: str) -> str:
    if len(key) <= ITEM_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{key[: ITEM_KEY_MAX - _HASH_CHARS - 1]}#{digest}"


def _failing_items(result: RuleResult) -> dict[str, ItemResult]:
    items: dict[str, ItemResult] = {}
    for item in result.items:
        # The engine keeps keys unique; a duplicate here would break the unique
        # constraint and refuse the whole report, so the first one wins.
        items.setdefault(capped_key(item.key), item)
    if result.status in (Status.FAIL, Status.WAIVED) and not items:
        # A failing rule with no item is still one finding, on the rule itself.
        waiver = None
        if result.status is Status.WAIVED:
            waiver = str(result.waiver.get("id")) if result.waiver else "waived"
        items[""] = ItemResult("", {}, result.title, waiver=waiver)
    return items


def _new_finding(
    host_id: int,
    result: RuleResult,
    key: str,
    item: ItemResult,
    observed_at: datetime,
    *,
    status: FindingStatus,
) -> dict[str, Any]:
    return {
        "host_id": host_id,
        "rule_id": result.rule_id,
        "item_key": key,
        "severity": result.severity.value,
        "status": status,
        "first_seen": observed_at,
        "last_seen": observed_at,
        "resolved_at": None,
        "reopened_count": 0,
        "evidence": item.evidence,
        "message": item.message.to_dict(),
    }
