"""The one implementation of the compliance score (see docs/scoring.md).

score = sum of severity weights of passing rules
        / sum of severity weights of passing, failing and erroring rules.
`not_applicable` and `waived` are excluded; `error` is never a pass. With nothing to
score (no weight in the denominator) the score is None: "unknown" is more honest than
a perfect or a zero score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from rules.language.model import Severity
from rules.results import RuleResult, Status

DEFAULT_WEIGHTS: Mapping[Severity, float] = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 5.0,
    Severity.MEDIUM: 2.0,
    Severity.LOW: 1.0,
    Severity.INFO: 0.0,
}


@dataclass(frozen=True)
class Score:
    ratio: float | None
    passed: int
    failed: int
    errors: int
    not_applicable: int
    waived: int
    failing_by_severity: Mapping[Severity, int] = field(default_factory=dict)
    # The denominator of `ratio` (Σ weight of pass, fail, error): pooling scores of
    # several hosts (agency score) needs it, a ratio alone loses it.
    possible_weight: float = 0.0


def score_results(
    results: Iterable[RuleResult], weights: Mapping[Severity, float] = DEFAULT_WEIGHTS
) -> Score:
    counts = dict.fromkeys(Status, 0)
    failing = dict.fromkeys(Severity, 0)
    earned = 0.0
    possible = 0.0
    for result in results:
        counts[result.status] += 1
        weight = weights.get(result.severity, 0.0)
        if result.status is Status.PASS:
            earned += weight
            possible += weight
        elif result.status in (Status.FAIL, Status.ERROR):
            possible += weight
            if result.status is Status.FAIL:
                failing[result.severity] += 1
    return Score(
        ratio=earned / possible if possible > 0 else None,
        passed=counts[Status.PASS],
        failed=counts[Status.FAIL],
        errors=counts[Status.ERROR],
        not_applicable=counts[Status.NOT_APPLICABLE],
        waived=counts[Status.WAIVED],
        failing_by_severity=failing,
        possible_weight=possible,
    )


class RequirementStatus(StrEnum):
    """A framework requirement's status for one host (or pooled over an agency)."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"
    WAIVED = "waived"
    NOT_APPLICABLE = "not_applicable"
    NOT_ASSESSED = "not_assessed"  # no mapped rule was evaluated: needs manual evidence


def requirement_status(
    rule_ids: Iterable[str], results: Mapping[str, RuleResult]
) -> RequirementStatus:
    """Worst of the mapped rules: fail > error > pass > waived > not applicable.

    A requirement passes only when every mapped rule that applies passes (waived
    rules count as neither); one failing rule fails it; an error with no failure
    makes it `error`, never `pass`.
    """
    statuses = {results[r].status for r in rule_ids if r in results}
    if not statuses:
        return RequirementStatus.NOT_ASSESSED
    for status, verdict in (
        (Status.FAIL, RequirementStatus.FAIL),
        (Status.ERROR, RequirementStatus.ERROR),
        (Status.PASS, RequirementStatus.PASS),
        (Status.WAIVED, RequirementStatus.WAIVED),
    ):
        if status in statuses:
            return verdict
    return RequirementStatus.NOT_APPLICABLE


def pooled_score(
    results_per_host: Iterable[Iterable[RuleResult]],
    weights: Mapping[Severity, float] = DEFAULT_WEIGHTS,
) -> Score:
    """Agency (or any group) score: every host's rule results pooled in one formula.

    Equivalent to the mean of host scores weighted by each host's possible weight,
    so a host with more applicable rules counts for more, and a host whose score is
    unknown (nothing applicable) counts for nothing.
    """
    return score_results((r for results in results_per_host for r in results), weights)
