"""The findings lifecycle: one finding per (host, rule, item key), kept over time.

Called with the results of a host's newest report, inside the ingest transaction:
- a failing item opens a finding, refreshes an open one, or reopens a resolved one;
- an open finding whose item no longer fails is resolved, but only when its rule was
  actually judged (pass, fail, not applicable). An `error` says nothing about the
  items it could not see, so it resolves nothing (its certain violations still
  count); `waived` leaves findings as they are (waivers arrive with a later issue).
Times are the report's collected_at: when the host was observed, not when the
report happened to arrive (an agent may deliver from its spool hours later).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.results import ItemResult, RuleResult, Status
from server.models import Finding

OPEN = "open"
RESOLVED = "resolved"

_JUDGED = {Status.PASS, Status.FAIL, Status.NOT_APPLICABLE}
_REPORTS_VIOLATIONS = {Status.FAIL, Status.ERROR}


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
    for result in results:
        known = existing.get(result.rule_id, {})
        failing = _failing_items(result) if result.status in _REPORTS_VIOLATIONS else {}
        for key, item in failing.items():
            found = known.get(key)
            if found is None:
                session.add(_new_finding(host_id, result, item, observed_at))
                changes.opened += 1
                continue
            finding = found
            if finding.status == RESOLVED:
                finding.status = OPEN
                finding.resolved_at = None
                finding.reopened_count += 1
                changes.reopened += 1
            else:
                changes.refreshed += 1
            finding.severity = result.severity.value
            finding.last_seen = observed_at
            finding.evidence = item.evidence
            finding.message = item.message.to_dict()
        if result.status not in _JUDGED:
            continue
        for key, finding in known.items():
            if finding.status == OPEN and key not in failing:
                finding.status = RESOLVED
                finding.resolved_at = observed_at
                changes.resolved += 1
    return changes


def _failing_items(result: RuleResult) -> dict[str, ItemResult]:
    items: dict[str, ItemResult] = {}
    for item in result.items:
        # The engine keeps keys unique; a duplicate here would break the unique
        # constraint and refuse the whole report, so the first one wins.
        items.setdefault(item.key, item)
    if result.status is Status.FAIL and not items:
        # A failing rule with no item is still one finding, on the rule itself.
        items[""] = ItemResult("", {}, result.title)
    return items


def _new_finding(
    host_id: int, result: RuleResult, item: ItemResult, observed_at: datetime
) -> Finding:
    return Finding(
        host_id=host_id,
        rule_id=result.rule_id,
        item_key=item.key,
        severity=result.severity.value,
        status=OPEN,
        first_seen=observed_at,
        last_seen=observed_at,
        resolved_at=None,
        reopened_count=0,
        evidence=item.evidence,
        message=item.message.to_dict(),
    )
