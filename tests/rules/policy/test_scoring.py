"""The score formula of docs/scoring.md, with its worked example."""

from __future__ import annotations

import pytest

from rules.language.model import Localized, Severity
from rules.policy.scoring import score_results
from rules.results import RuleResult, Status

TITLE = Localized("t", "t")


def result(severity: Severity, status: Status) -> RuleResult:
    return RuleResult(f"R-{severity}-{status}", severity, status, TITLE)


def test_worked_example_from_docs() -> None:
    # docs/scoring.md: critical pass (10), high fail (5), medium error (2),
    # low pass (1), info fail (0), high waived and medium n/a excluded.
    results = [
        result(Severity.CRITICAL, Status.PASS),
        result(Severity.HIGH, Status.FAIL),
        result(Severity.MEDIUM, Status.ERROR),
        result(Severity.LOW, Status.PASS),
        result(Severity.INFO, Status.FAIL),
        result(Severity.HIGH, Status.WAIVED),
        result(Severity.MEDIUM, Status.NOT_APPLICABLE),
    ]
    score = score_results(results)
    assert score.ratio == pytest.approx(11 / 18)
    assert (score.passed, score.failed, score.errors) == (2, 2, 1)
    assert (score.waived, score.not_applicable) == (1, 1)
    assert score.failing_by_severity[Severity.HIGH] == 1
    assert score.failing_by_severity[Severity.INFO] == 1
    assert score.failing_by_severity[Severity.CRITICAL] == 0


def test_error_is_never_a_pass() -> None:
    assert score_results([result(Severity.HIGH, Status.ERROR)]).ratio == 0.0


def test_nothing_to_score_is_unknown_not_perfect() -> None:
    assert score_results([result(Severity.HIGH, Status.NOT_APPLICABLE)]).ratio is None
    assert score_results([]).ratio is None


def test_custom_weights() -> None:
    weights = {s: 1.0 for s in Severity}
    results = [result(Severity.CRITICAL, Status.FAIL), result(Severity.INFO, Status.PASS)]
    assert score_results(results, weights).ratio == 0.5
