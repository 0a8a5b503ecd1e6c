"""The rule engine: a pure function from (rules, facts, params) to results.

No I/O, no clock, no globals: the agent's `check` and the collector call the same
`evaluate` and get the same answer. Two rules guard against false comfort:
a fact path that does not exist is an `error` (its collector failed or is absent),
never a pass; and comparing values of different kinds is an `error`, never false.
The one side effect: an exception that is not an `EvaluationError` is an engine bug,
logged with the rule id and its traceback (logger `canhgac.rules.engine`) besides
becoming the rule's `error`, so it is seen by whoever runs the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rules.errors import EvaluationError
from rules.language.model import (
    AllOf,
    AnyOf,
    Expr,
    Leaf,
    Not,
    ParamRef,
    Quantified,
    Quantifier,
    Rule,
    RuleSet,
)
from rules.language.operators import OPERATORS, kind_of
from rules.language.templates import render
from rules.results import ItemResult, RuleResult, Status

ParamOverrides = Mapping[str, Mapping[str, Any]]
logger = logging.getLogger("canhgac.rules.engine")


class _PathMissingError(LookupError):
    """Internal: a path step did not exist."""


class _Context:
    """What an expression sees: the document, the parameters, the current item."""

    __slots__ = ("domain", "in_item", "item", "params", "root", "trace")

    def __init__(
        self,
        root: Mapping[str, Any],
        params: Mapping[str, Any],
        item: Any = None,
        in_item: bool = False,
        domain: str = "",
    ) -> None:
        self.root = root
        self.params = params
        self.item = item
        self.in_item = in_item
        self.domain = domain  # inside a quantifier: the domain of the quantified list
        self.trace: dict[str, Any] = {}

    def with_item(self, item: Any, source: str) -> _Context:
        # Called once per list element: a plain constructor, not dataclasses.replace.
        return _Context(self.root, self.params, item, True, _domain_of(self, source))


@lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _walk(start: Any, steps: tuple[str, ...]) -> Any:
    current = start
    for step in steps:
        if isinstance(current, Mapping):
            if step not in current:
                raise _PathMissingError(step)
            current = current[step]
        elif isinstance(current, list | tuple) and step.isdigit():
            index = int(step)
            if index >= len(current):
                raise _PathMissingError(step)
            current = current[index]
        else:
            raise _PathMissingError(step)
    return current


def _resolve(ctx: _Context, path: str) -> Any:
    if path == ".":
        return ctx.item if ctx.in_item else ctx.root
    if path == "$":
        return ctx.root
    if path.startswith("$."):
        return _walk(ctx.root, _steps(path[2:]))
    return _walk(ctx.item if ctx.in_item else ctx.root, _steps(path))


def _domain_of(ctx: _Context, path: str) -> str:
    """The facts domain a path reads; inside a quantifier, the quantified list's domain."""
    if ctx.in_item and not path.startswith("$."):
        return ctx.domain
    return path.removeprefix("$.").split(".", 1)[0]


def _collector_reason(ctx: _Context, path: str) -> str:
    """What the agent said in `errors` about the domain of `path`, if anything."""
    domain = _domain_of(ctx, path)
    reported = ctx.root.get("errors")
    for entry in reported if isinstance(reported, list) else ():
        if isinstance(entry, Mapping) and entry.get("domain") == domain:
            kind = entry.get("kind", "failed")
            return f" (collector '{domain}' {kind}: {entry.get('reason', '')})"
    return ""


def _missing_error(ctx: _Context, path: str) -> EvaluationError:
    where = "item field" if ctx.in_item and not path.startswith("$.") else "fact path"
    message = f"{where} '{path}' is missing"
    reason = _collector_reason(ctx, path)
    domain = _domain_of(ctx, path)
    at_root = not ctx.in_item or path.startswith("$.")
    if reason:
        message += reason
    elif at_root and domain not in ctx.root:
        message += f" (the facts document has no '{domain}' domain)"
    return EvaluationError(message)


def _value(ctx: _Context, value: Any) -> Any:
    if isinstance(value, ParamRef):
        if value.name not in ctx.params:
            raise EvaluationError(f"parameter '{value.name}' has no value")
        return ctx.params[value.name]
    return value


def _leaf(leaf: Leaf, ctx: _Context) -> bool:
    spec = OPERATORS[leaf.op]
    try:
        fact = _resolve(ctx, leaf.path)
    except _PathMissingError:
        if not spec.accepts_missing:
            raise _missing_error(ctx, leaf.path) from None
        fact = None
    ctx.trace[leaf.path] = fact
    try:
        return bool(spec.apply(fact, _value(ctx, leaf.value)))
    except EvaluationError as e:
        reason = _collector_reason(ctx, leaf.path) if fact is None else ""
        raise EvaluationError(f"{leaf.path}: {e}{reason}") from e


def _items_of(ctx: _Context, source: str) -> list[Any]:
    try:
        items = _resolve(ctx, source)
    except _PathMissingError:
        raise _missing_error(ctx, source) from None
    if not isinstance(items, list | tuple):
        raise EvaluationError(f"'{source}' is a {kind_of(items)}, a quantifier needs a list")
    return list(items)


def _holds(q: Quantified, ctx: _Context) -> bool | None:
    """Whether the assertion holds for this item; None when `where` filters it out."""
    if q.where is not None and not _expr(q.where, ctx):
        return None
    return _expr(q.assertion, ctx)


def _is_violation(quantifier: Quantifier, holds: bool) -> bool:
    if quantifier is Quantifier.FOR_ALL:
        return not holds
    if quantifier is Quantifier.FOR_NONE:
        return holds
    return False  # for_any has no violating item, only "none matched"


def _quantified(q: Quantified, ctx: _Context) -> bool:
    outcomes = [_holds(q, ctx.with_item(item, q.source)) for item in _items_of(ctx, q.source)]
    judged = [holds for holds in outcomes if holds is not None]
    if q.quantifier is Quantifier.FOR_ANY:
        return any(judged)
    return not any(_is_violation(q.quantifier, holds) for holds in judged)


def _expr(expr: Expr, ctx: _Context) -> bool:
    if isinstance(expr, Leaf):
        return _leaf(expr, ctx)
    if isinstance(expr, AllOf):
        return all(_expr(item, ctx) for item in expr.items)
    if isinstance(expr, AnyOf):
        return any(_expr(item, ctx) for item in expr.items)
    if isinstance(expr, Not):
        return not _expr(expr.item, ctx)
    return _quantified(expr, ctx)


def _lookup(ctx: _Context) -> Any:
    def lookup(name: str) -> Any:
        if name.startswith("params."):
            return ctx.params[name.removeprefix("params.")]
        try:
            return _resolve(ctx, name)
        except _PathMissingError as e:
            raise KeyError(name) from e

    return lookup


def _item_key(q: Quantified, ctx: _Context, index: int) -> str:
    return (render(q.key, _lookup(ctx)) if q.key else "") or f"#{index}"


def _evidence(item: Any) -> dict[str, Any]:
    return dict(item) if isinstance(item, Mapping) else {"value": item}


def _item_results(rule: Rule, q: Quantified, ctx: _Context) -> tuple[list[ItemResult], list[str]]:
    items: list[ItemResult] = []
    errors: list[str] = []
    seen_keys: dict[str, int] = {}
    any_held = False
    elements = _items_of(ctx, q.source)
    for index, element in enumerate(elements):
        item_ctx = ctx.with_item(element, q.source)
        try:
            holds = _holds(q, item_ctx)
        except EvaluationError as e:
            errors.append(f"item {_item_key(q, item_ctx, index)}: {e}")
            continue
        if holds is None:
            continue
        any_held = any_held or holds
        if not _is_violation(q.quantifier, holds):
            continue
        key = _item_key(q, item_ctx, index)  # rendered only for items that are reported
        seen_keys[key] = seen_keys.get(key, 0) + 1
        if seen_keys[key] > 1:  # keep item keys unique: one finding per key
            key = f"{key}#{seen_keys[key]}"
        items.append(ItemResult(key, _evidence(element), _message(rule, item_ctx)))
    if q.quantifier is Quantifier.FOR_ANY and not any_held and not errors:
        evidence = {"in": q.source, "count": len(elements)}
        items.append(ItemResult("", evidence, _message(rule, ctx)))
    return items, errors


def _message(rule: Rule, ctx: _Context) -> Any:
    lookup = _lookup(ctx)
    return type(rule.message)(
        vi=render(rule.message.vi, lookup, "vi"), en=render(rule.message.en, lookup, "en")
    )


def evaluate_rule(
    rule: Rule, facts: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> RuleResult:
    """Judge one rule against one facts document."""
    ctx = _Context(root=facts, params={**rule.params, **(overrides or {})})

    def result(
        status: Status, items: list[ItemResult] | None = None, errors: list[str] | None = None
    ) -> RuleResult:
        return RuleResult(
            rule.id, rule.severity, status, rule.title, tuple(items or ()), tuple(errors or ())
        )

    try:
        if rule.applies_to is not None and not _expr(rule.applies_to, ctx):
            return result(Status.NOT_APPLICABLE)
        ctx.trace.clear()  # evidence shows what the check read, not the applicability test
        if isinstance(rule.check, Quantified):
            items, errors = _item_results(rule, rule.check, ctx)
        else:
            items, errors = [], []
            if not _expr(rule.check, ctx):
                items.append(ItemResult("", dict(ctx.trace), _message(rule, ctx)))
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
