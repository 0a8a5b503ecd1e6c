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


def _worst(results: list[RuleResult]) -> RuleResult:
    statuses = {r.status for r in results}
    status = next(s for s in _WORST if s in statuses)
    return next(r for r in results if r.status is status)


def compliance(
    frameworks: Iterable[Framework],
    states: Iterable[HostResults],
    levels: Mapping[int, int | None],
) -> list[FrameworkCompliance]:
    """Each requirement judged over the hosts of its security levels only (a host of
    unknown level: every requirement). With hosts but none at its levels, it is not
    applicable: not "not met", and not "not assessed" (nothing is missing)."""
    # Results by (level, rule): at most six levels, so a requirement pools a few lists.
    by_rule: dict[tuple[int | None, str], list[RuleResult]] = defaultdict(list)
    failing: dict[tuple[int | None, str], set[str]] = defaultdict(set)
    present: set[int | None] = set()
    for state in states:
        level = levels.get(state.host_id)
        present.add(level)
        for result in state.results:
            by_rule[(level, result.rule_id)].append(result)
            if result.status is Status.FAIL:
                failing[(level, result.rule_id)].add(state.label)
    answer = []
    for framework in frameworks:
        rows = []
        for req in framework.requirements:
            judged = [level for level in present if req.applies_at(level)]
            pooled = {}
            for rule_id in req.rules:
                results = [r for level in judged for r in by_rule.get((level, rule_id), [])]
                if results:
                    pooled[rule_id] = _worst(results)
            status = (
                RequirementStatus.NOT_APPLICABLE
                if present and not judged
                else requirement_status(req.rules, pooled)
            )
            rows.append(
                RequirementRow(
                    requirement=req.id,
                    group=req.group,
                    title=text_of(req.title),
                    confidence=req.confidence,
                    levels=list(req.levels),
                    status=status,
                    rules=list(req.rules),
                    failing_hosts=sorted(
                        {h for lv in judged for r in req.rules for h in failing.get((lv, r), ())}
                    ),
                )
            )
        answer.append(
            FrameworkCompliance(
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
        )
    return answer
