"""The `defined` operator: a path present in the document, whatever its value.

It answers "the collector ran" without the `in: [true, false, null]` idiom: a null
(unknown) value is defined, a missing path is an error naming the collector's reason.
"""

from __future__ import annotations

from rules.engine import evaluate_rule
from rules.language.loader import load_pack_text
from rules.language.model import Rule
from rules.language.operators import OPERATORS, Operator
from rules.results import Status

from ..conftest import facts_document

PACK = """
pack: {id: defined-cases, version: 1.0.0, title: {vi: Thử, en: Test}}
rules:
  - id: DEFINED-THEN-KNOWN-FALSE
    title: {vi: Thử, en: Test}
    severity: low
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check:
      all:
        - {path: logging.syslog.running, op: defined}
        - not: {all: [{path: logging.syslog.running, op: exists}, {path: logging.syslog.running, op: eq, value: false}]}
    message: {vi: Thử, en: Test}
"""


def _rule() -> Rule:
    pack, problems = load_pack_text(PACK, "defined.yaml")
    assert problems == [] and pack is not None
    return pack.rules[0]


def test_defined_takes_no_value_and_does_not_accept_a_missing_path() -> None:
    spec = OPERATORS[Operator.DEFINED]
    assert spec.takes_value is False
    assert spec.accepts_missing is False
    assert spec.apply(None, None) is True
    assert spec.apply(False, None) is True


def test_a_value_for_defined_is_a_load_error() -> None:
    text = PACK.replace("op: defined}", "op: defined, value: true}", 1)
    pack, problems = load_pack_text(text, "defined.yaml")
    assert pack is None or problems
    assert any("defined" in p.message for p in problems)


def test_null_is_defined_and_a_missing_path_is_an_error_with_the_reason() -> None:
    rule = _rule()
    unknown = facts_document(logging={"syslog": {"daemon": None, "running": None}})
    assert evaluate_rule(rule, unknown).status is Status.PASS
    stopped = facts_document(logging={"syslog": {"daemon": "rsyslog", "running": False}})
    assert evaluate_rule(rule, stopped).status is Status.FAIL
    missing = facts_document(
        errors=[{"domain": "logging", "kind": "failed", "reason": "journald.conf unreadable"}]
    )
    result = evaluate_rule(rule, missing)
    assert result.status is Status.ERROR
    assert "logging" in result.errors[0]
    assert "journald.conf unreadable" in result.errors[0]


def test_contains_reads_a_frozen_list_like_a_list() -> None:
    """Fixture facts are frozen (tuples); `contains` must not call them another kind."""
    spec = OPERATORS[Operator.CONTAINS]
    assert spec.apply(("a", "b"), "b") is True
    assert spec.apply((), "b") is False
    assert OPERATORS[Operator.NOT_CONTAINS].apply(("a",), "b") is True
