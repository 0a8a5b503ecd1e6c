"""Rules judged against one facts document, with each rule compiled once.

A rule is compiled (`compiler`) the first time it is evaluated with a given set of
parameter overrides and kept while the rule object lives: the cache is keyed by the
rule's identity and forgets it when the rule is collected (a weak reference), so a
reloaded policy does not keep the old one alive. The cache changes no result:
compiled code holds no state between evaluations.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from rules.engine.compiler import Code, Frame, QuantifiedCode, compile_expr
from rules.engine.inputs import rule_inputs
from rules.engine.messages import Messages, Template
from rules.errors import EvaluationError
from rules.language.model import Localized, Quantified, Quantifier, Rule, RuleSet
from rules.results import ItemResult, RuleResult, Status

ParamOverrides = Mapping[str, Mapping[str, Any]]
logger = logging.getLogger("canhgac.rules.engine")

MAX_VARIANTS = 64  # parameter override sets kept per rule (scopes declare a few)


class CompiledRule:
    """One rule with its parameters bound: applicability, check, key and messages."""

    __slots__ = (
        "applies_to",
        "check",
        "inputs",
        "key",
        "localized",
        "messages",
        "params",
        "variant",
        "wanted",
    )

    def __init__(self, rule: Rule, params: Mapping[str, Any], variant: str = "") -> None:
        # Nothing here refers to the rule itself: the cache must not keep it alive.
        self.localized = type(rule.message)
        self.params = params
        self.variant = variant  # names the parameter overrides (a cache key's part)
        self.inputs = rule_inputs(rule)
        self.wanted = self.inputs.wanted  # computed once: read per evaluation
        self.applies_to = compile_expr(rule.applies_to, params) if rule.applies_to else None
        self.check: Code = compile_expr(rule.check, params)
        key = rule.check.key if isinstance(rule.check, Quantified) else ""
        self.key = Template(key) if key else None
        self.messages = Messages(rule.message.vi, rule.message.en)

    def message(self, frame: Frame) -> Localized:
        vi, en = self.messages.render(frame)
        return self.localized(vi=vi, en=en)

    def item_key(self, frame: Frame, index: int) -> str:
        return (self.key.render(frame) if self.key else "") or f"#{index}"


_CACHE: dict[int, tuple[weakref.ref[Rule], dict[str, CompiledRule]]] = {}


def _forget(rule_id: int) -> Any:
    def forget(_ref: weakref.ref[Rule]) -> None:
        _CACHE.pop(rule_id, None)  # called before the id can belong to another object

    return forget


def compiled(rule: Rule, overrides: Mapping[str, Any] | None) -> CompiledRule:
    """The rule compiled with its parameters and `overrides` (cached while it lives)."""
    rule_id = id(rule)
    slot = _CACHE.get(rule_id)
    if slot is None or slot[0]() is not rule:
        slot = _CACHE[rule_id] = (weakref.ref(rule, _forget(rule_id)), {})
    variants = slot[1]
    variant = repr(sorted(overrides.items())) if overrides else ""
    entry = variants.get(variant)
    if entry is None:
        if len(variants) >= MAX_VARIANTS:
            variants.clear()  # many override sets: start again, never grow
        params = {**rule.params, **(overrides or {})}
        entry = variants[variant] = CompiledRule(rule, params, variant)
    return entry


def _evidence(item: Any) -> dict[str, Any]:
    if type(item) is dict:
        return item.copy()
    return dict(item) if isinstance(item, Mapping) else {"value": item}


def _item_results(
    code: CompiledRule, q: QuantifiedCode, frame: Frame
) -> tuple[list[ItemResult], list[str]]:
    items: list[ItemResult] = []
    errors: list[str] = []
    seen_keys: dict[str, int] = {}
    any_held = False
    elements = q.items(frame)
    quantifier, where, assertion = q.quantifier, q.where, q.assertion
    # An item is reported when the assertion's answer is this one (never for for_any).
    violating = {Quantifier.FOR_ALL: False, Quantifier.FOR_NONE: True}.get(quantifier)
    frame.in_item, frame.domain = True, q.item_domain(frame)
    for index, element in enumerate(elements):
        frame.item = element
        try:
            if where is not None and not where(frame):
                continue
            holds = assertion(frame)
        except EvaluationError as e:
            errors.append(f"item {code.item_key(frame, index)}: {e}")
            continue
        any_held = any_held or holds
        if holds is not violating:
            continue
        key = code.item_key(frame, index)  # rendered only for items that are reported
        seen_keys[key] = seen_keys.get(key, 0) + 1
        if seen_keys[key] > 1:  # keep item keys unique: one finding per key
            key = f"{key}#{seen_keys[key]}"
        items.append(ItemResult(key, _evidence(element), code.message(frame)))
    frame.item, frame.in_item, frame.domain = None, False, ""
    if quantifier is Quantifier.FOR_ANY and not any_held and not errors:
        evidence = {"in": q.source, "count": len(elements)}
        items.append(ItemResult("", evidence, code.message(frame)))
    return items, errors


def evaluate_rule(
    rule: Rule, facts: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> RuleResult:
    """Judge one rule against one facts document."""

    def result(
        status: Status, items: list[ItemResult] | None = None, errors: list[str] | None = None
    ) -> RuleResult:
        return RuleResult(
            rule.id, rule.severity, status, rule.title, tuple(items or ()), tuple(errors or ())
        )

    try:
        code = compiled(rule, overrides)
        frame = Frame(facts, code.params)
        if code.applies_to is not None and not code.applies_to(frame):
            return result(Status.NOT_APPLICABLE)
        frame.trace.clear()  # evidence shows what the check read, not the applicability test
        if isinstance(code.check, QuantifiedCode):
            items, errors = _item_results(code, code.check, frame)
        else:
            items, errors = [], []
            if not code.check(frame):
                items.append(ItemResult("", dict(frame.trace), code.message(frame)))
    except EvaluationError as e:
        return result(Status.ERROR, errors=[str(e)])
    except RecursionError:
        return result(Status.ERROR, errors=["facts nested too deeply to evaluate"])
    except Exception as e:
        # Facts come from hosts and are untrusted: whatever they trigger in one rule
        # must become that rule's `error`, never a failed ingest or a crashed check.
        # It is also a bug of the engine or an operator: log it where it can be fixed.
        logger.exception("rule %s: internal error while evaluating", rule.id)
        return result(Status.ERROR, errors=[f"internal error: {type(e).__name__}: {e}"])
    if errors:
        return result(Status.ERROR, items, errors)
    return result(Status.FAIL if items else Status.PASS, items)


def evaluate(
    ruleset: RuleSet, facts: Mapping[str, Any], params: ParamOverrides | None = None
) -> list[RuleResult]:
    """Judge every rule of `ruleset`; `params` maps rule id -> parameter overrides."""
    overrides = params or {}
    return [evaluate_rule(rule, facts, overrides.get(rule.id)) for rule in ruleset.rules]
