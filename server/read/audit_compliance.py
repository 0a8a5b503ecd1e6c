"""Compliance by framework in the audit: each requirement met, not met, not assessed
or not applicable, judged over the hosts of the security levels it belongs to.

A host's level (cấp độ) comes from the scopes (`server.read.levels`); a host of
unknown level is judged by every requirement, so leaving a level undeclared never
makes an agency look better.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from rules.language.model import Localized
from rules.policy.frameworks import Framework
from rules.policy.scoring import RequirementStatus, requirement_status
from rules.results import RuleResult, Status
from server.read.audit_views import FrameworkCompliance, RequirementRow, Text

# Worst first: how one rule's results over several hosts pool into one (docs/scoring.md).
_WORST = (Status.FAIL, Status.ERROR, Status.PASS, Status.WAIVED, Status.NOT_APPLICABLE)
_OTHER = (RequirementStatus.ERROR, RequirementStatus.WAIVED)


class HostResults(Protocol):
    """What compliance reads of a host: its id (for its level), label and results."""

    @property
    def host_id(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def results(self) -> tuple[RuleResult, ...]: ...


def text_of(value: Localized | Mapping[str, Any] | None) -> Text:
    if isinstance(value, Localized):
        return Text(vi=value.vi, en=value.en)
    value = value or {}
    return Text(vi=str(value.get("vi", "")), en=str(value.get("en", "")))


class ComplianceTally:
    """What compliance needs of an agency's hosts, added one host at a time: per
    (level, rule) one result of each status and the labels of the failing hosts, and
    the levels present. Bounded by rules x levels (and the failing hosts, which the
    document lists), not by every host's results."""

    def __init__(self, levels: Mapping[int, int | None]) -> None:
        self._levels = levels
        self._by_rule: dict[tuple[int | None, str], dict[Status, RuleResult]] = defaultdict(dict)
        self._failing: dict[tuple[int | None, str], set[str]] = defaultdict(set)
        self._present: set[int | None] = set()

    def add(self, host_id: int, label: str, results: Iterable[RuleResult]) -> None:
        level = self._levels.get(host_id)
        self._present.add(level)
        for result in results:
            self._by_rule[(level, result.rule_id)].setdefault(result.status, result)
            if result.status is Status.FAIL:
                self._failing[(level, result.rule_id)].add(label)

    def frameworks(self, frameworks: Iterable[Framework]) -> list[FrameworkCompliance]:
        """Each requirement judged over the hosts of its security levels only (a host
        of unknown level: every requirement). With hosts but none at its levels, it is
        not applicable: not "not met", and not "not assessed" (nothing is missing)."""
        return [self._framework(framework) for framework in frameworks]

    def _framework(self, framework: Framework) -> FrameworkCompliance:
        rows = []
        for req in framework.requirements:
            judged = [level for level in self._present if req.applies_at(level)]
            pooled = {}
            for rule_id in req.rules:
                statuses = {
                    status: result
                    for level in judged
                    for status, result in self._by_rule.get((level, rule_id), {}).items()
                }
                if statuses:
                    pooled[rule_id] = statuses[next(s for s in _WORST if s in statuses)]
            status = (
                RequirementStatus.NOT_APPLICABLE
                if self._present and not judged
                else requirement_status(req.rules, pooled)
            )
            failing = {
                h for lv in judged for r in req.rules for h in self._failing.get((lv, r), ())
            }
            rows.append(
                RequirementRow(
                    requirement=req.id,
                    group=req.group,
                    title=text_of(req.title),
                    confidence=req.confidence,
                    levels=list(req.levels),
                    status=status,
                    rules=list(req.rules),
                    failing_hosts=sorted(failing),
                )
            )
        return FrameworkCompliance(
            framework=framework.id,
            version=framework.version,
            title=text_of(framework.title),
            confidence=framework.confidence,
            met=sum(1 for r in rows if r.status is RequirementStatus.PASS),
            not_met=sum(1 for r in rows if r.status is RequirementStatus.FAIL),
            not_assessed=sum(1 for r in rows if r.status is RequirementStatus.NOT_ASSESSED),
            not_applicable=sum(1 for r in rows if r.status is RequirementStatus.NOT_APPLICABLE),
            other=sum(1 for r in rows if r.status in _OTHER),
            requirements=rows,
        )


def compliance(
    frameworks: Iterable[Framework],
    states: Iterable[HostResults],
    levels: Mapping[int, int | None],
) -> list[FrameworkCompliance]:
    """Compliance of hosts held in memory (`ComplianceTally` adds them one by one)."""
    tally = ComplianceTally(levels)
    for state in states:
        tally.add(state.host_id, state.label, state.results)
    return tally.frameworks(frameworks)
