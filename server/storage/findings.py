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
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rules.results import ItemResult, RuleResult, Status
from server.storage.models import Finding, FindingStatus

# Findings whose item still fails (for SQL `IN`): the states that are `.active`.
ACTIVE = tuple(status for status in FindingStatus if status.active)

ITEM_KEY_MAX = 512
_HASH_CHARS = 16
_JUDGED = {Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.WAIVED}
_REPORTS_VIOLATIONS = {Status.FAIL, Status.ERROR, Status.WAIVED}


@dataclass
class FindingChanges:
    opened: int = 0
    refreshed: int = 0
    reopened: int = 0
    resolved: int = 0


def update_findings(
    session: Session, host_id: int, results: Iterable[RuleResult], observed_at: datetime
) -> FindingChanges:
    changes = FindingChanges()
    existing: defaultdict[str, dict[str, Finding]] = defaultdict(dict)
    for finding in session.scalars(select(Finding).where(Finding.host_id == host_id)):
        existing[finding.rule_id][finding.item_key] = finding
    results = list(results)
    changes.resolved += _resolve_removed_rules(existing, results, observed_at)
    for result in results:
        known = existing.get(result.rule_id, {})
        failing = _failing_items(result) if result.status in _REPORTS_VIOLATIONS else {}
        for key, item in failing.items():
            waived = item.waiver is not None or result.status is Status.WAIVED
            status = FindingStatus.WAIVED if waived else FindingStatus.OPEN
            found = known.get(key)
            if found is None:
                session.add(_new_finding(host_id, result, key, item, observed_at, status=status))
                changes.opened += 1
                continue
            finding = found
            if finding.status is FindingStatus.RESOLVED:
                finding.resolved_at = None
                finding.reopened_count += 1
                changes.reopened += 1
            else:
                changes.refreshed += 1
            finding.status = status
            finding.severity = result.severity.value
            finding.last_seen = observed_at
            finding.evidence = item.evidence
            finding.message = item.message.to_dict()
        if result.status not in _JUDGED:
            continue
        for key, finding in known.items():
            if finding.status.active and key not in failing:
                finding.status = FindingStatus.RESOLVED
                finding.resolved_at = observed_at
                changes.resolved += 1
    return changes


def _resolve_removed_rules(
    existing: dict[str, dict[str, Finding]], results: list[RuleResult], observed_at: datetime
) -> int:
    """Resolve the open findings of rules that are no longer in the results."""
    evaluated_rules = {result.rule_id for result in results}
    resolved = 0
    for rule_id, known in existing.items():
        if rule_id in evaluated_rules:
            continue
        for finding in known.values():
            if finding.status.active:
                finding.status = FindingStatus.RESOLVED
                finding.resolved_at = observed_at
                resolved += 1
    return resolved


def touch_open_findings(session: Session, host_id: int, observed_at: datetime) -> None:
    """Unchanged facts, not re-evaluated: the open findings were seen again."""
    session.execute(
        update(Finding)
        .where(
            Finding.host_id == host_id,
            Finding.status.in_(ACTIVE),
            Finding.last_seen < observed_at,
        )
        .values(last_seen=observed_at)
        .execution_options(synchronize_session=False)
    )


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
) -> Finding:
    return Finding(
        host_id=host_id,
        rule_id=result.rule_id,
        item_key=key,
        severity=result.severity.value,
        status=status,
        first_seen=observed_at,
        last_seen=observed_at,
        resolved_at=None,
        reopened_count=0,
        evidence=item.evidence,
        message=item.message.to_dict(),
    )
