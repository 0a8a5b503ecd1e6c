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

from rules.model import Severity
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
    )
