"""Rule expressions compiled once into closures over one mutable evaluation frame.

The parsed model (`rules.language.model`) is walked once per rule and parameter set:
paths are split into steps, each operator is bound to its value (`specialise`) and
`{param: name}` values are resolved. Evaluating a document then only calls closures;
a quantifier sets the frame's current item in place instead of building a context
per element, and restores it afterwards (quantifiers nest).

The answers and error messages are exactly those of the interpreter this replaced
(tests/rules/test_engine_golden.py compares them with results it recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules.errors import EvaluationError
from rules.language.bound import Test, specialise
from rules.language.model import AllOf, AnyOf, Expr, Leaf, Not, ParamRef, Quantified, Quantifier
from rules.language.operators import OPERATORS, kind_of


class PathMissingError(LookupError):
    """Internal: a path step did not exist."""


class Frame:
    """What an expression sees: the document, the parameters, the current item."""

    __slots__ = ("domain", "in_item", "item", "params", "root", "trace")

    def __init__(self, root: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.root = root
        self.params = params
        self.item: Any = None
        self.in_item = False
        self.domain = ""  # inside a quantifier: the domain of the quantified list
        # the facts read outside any quantifier: a failed plain check's evidence
        self.trace: dict[str, Any] = {}


Code = Callable[[Frame], bool]
Getter = Callable[[Frame], Any]
_MISSING = object()


def walk(current: Any, steps: tuple[str, ...]) -> Any:
    for step in steps:
        if type(current) is dict:  # JSON objects: one lookup instead of `in` then `[]`
            current = current.get(step, _MISSING)
            if current is _MISSING:
                raise PathMissingError(step)
        elif isinstance(current, Mapping):
            if step not in current:
                raise PathMissingError(step)
            current = current[step]
        elif isinstance(current, list | tuple) and step.isdigit():
            index = int(step)
            if index >= len(current):
                raise PathMissingError(step)
            current = current[index]
        else:
            raise PathMissingError(step)
    return current


def compile_path(path: str) -> Getter:
    """A function reading `path` in a frame; raises PathMissingError."""
    if path == ".":
        return lambda frame: frame.item if frame.in_item else frame.root
    if path == "$":
        return lambda frame: frame.root
    if path.startswith("$."):
        absolute = tuple(path[2:].split("."))
        return lambda frame: walk(frame.root, absolute)
    steps = tuple(path.split("."))
    if len(steps) == 1:
        step = steps[0]

        def one_step(frame: Frame) -> Any:
            current = frame.item if frame.in_item else frame.root
            if type(current) is dict:
                value = current.get(step, _MISSING)
                if value is _MISSING:
                    raise PathMissingError(step)
                return value
            return walk(current, steps)

        return one_step
    return lambda frame: walk(frame.item if frame.in_item else frame.root, steps)


def domain_of(frame: Frame, path: str) -> str:
    """The facts domain a path reads; inside a quantifier, the quantified list's domain."""
    if frame.in_item and not path.startswith("$."):
        return frame.domain
    return path.removeprefix("$.").split(".", 1)[0]


def collector_reason(frame: Frame, path: str) -> str:
    """What the agent said in `errors` about the domain of `path`, if anything."""
    domain = domain_of(frame, path)
    reported = frame.root.get("errors")
    for entry in reported if isinstance(reported, list) else ():
        if isinstance(entry, Mapping) and entry.get("domain") == domain:
            kind = entry.get("kind", "failed")
            return f" (collector '{domain}' {kind}: {entry.get('reason', '')})"
    return ""


def missing_error(frame: Frame, path: str) -> EvaluationError:
    where = "item field" if frame.in_item and not path.startswith("$.") else "fact path"
    message = f"{where} '{path}' is missing"
    reason = collector_reason(frame, path)
    domain = domain_of(frame, path)
    at_root = not frame.in_item or path.startswith("$.")
    if reason:
        message += reason
    elif at_root and domain not in frame.root:
        message += f" (the facts document has no '{domain}' domain)"
    return EvaluationError(message)


def _bound_test(leaf: Leaf, params: Mapping[str, Any]) -> Test:
    value = leaf.value
    if isinstance(value, ParamRef):
        if value.name not in params:
            message = f"parameter '{value.name}' has no value"

            def unset(_fact: Any) -> bool:
                raise EvaluationError(message)

            return unset
        value = params[value.name]
    return specialise(leaf.op, value)


def _compile_leaf(leaf: Leaf, params: Mapping[str, Any], in_item: bool) -> Code:
    path = leaf.path
    get = compile_path(path)
    test = _bound_test(leaf, params)  # answers a bool, never another truthy value
    accepts_missing = OPERATORS[leaf.op].accepts_missing
    steps = tuple(path.split("."))
    # A one-step item field (`port`, `name`: most leaves inside quantifiers) is read
    # inline; whether a leaf is inside a quantifier is known now, not per item.
    step = steps[0] if in_item and len(steps) == 1 and path not in (".", "$") else None

    def missing(frame: Frame) -> None:
        if not accepts_missing:
            raise missing_error(frame, path) from None

    def failed(frame: Frame, fact: Any, e: EvaluationError) -> EvaluationError:
        reason = collector_reason(frame, path) if fact is None else ""
        return EvaluationError(f"{path}: {e}{reason}")

    def item_field(frame: Frame) -> bool:
        item = frame.item
        if type(item) is dict:
            fact = item.get(step, _MISSING)
            if fact is _MISSING:
                missing(frame)
                fact = None
        else:
            try:
                fact = get(frame)
            except PathMissingError:
                missing(frame)
                fact = None
        try:
            return test(fact)
        except EvaluationError as e:
            raise failed(frame, fact, e) from e

    def code(frame: Frame) -> bool:
        try:
            fact = get(frame)
        except PathMissingError:
            missing(frame)
            fact = None
        if not frame.in_item:  # a plain check's evidence: what it read
            frame.trace[path] = fact
        try:
            return test(fact)
        except EvaluationError as e:
            raise failed(frame, fact, e) from e

    return item_field if step is not None else code


class QuantifiedCode:
    """A compiled `for_all | for_any | for_none`; its parts serve the item loop too."""

    __slots__ = ("absolute", "assertion", "get", "quantifier", "source", "source_domain", "where")

    def __init__(self, q: Quantified, params: Mapping[str, Any]) -> None:
        self.quantifier = q.quantifier
        self.source = q.source
        self.get = compile_path(q.source)
        self.absolute = q.source.startswith("$.")
        self.source_domain = q.source.removeprefix("$.").split(".", 1)[0]
        # `where` filters items out; `assertion` judges the others.
        self.where = compile_expr(q.where, params, True) if q.where is not None else None
        self.assertion = compile_expr(q.assertion, params, True)

    def items(self, frame: Frame) -> list[Any] | tuple[Any, ...]:
        try:
            items = self.get(frame)
        except PathMissingError:
            raise missing_error(frame, self.source) from None
        if not isinstance(items, list | tuple):
            raise EvaluationError(
                f"'{self.source}' is a {kind_of(items)}, a quantifier needs a list"
            )
        return items

    def item_domain(self, frame: Frame) -> str:
        return frame.domain if frame.in_item and not self.absolute else self.source_domain

    def __call__(self, frame: Frame) -> bool:
        items = self.items(frame)
        saved = frame.item, frame.in_item, frame.domain
        frame.in_item, frame.domain = True, self.item_domain(frame)
        # Every item is judged even once the answer is known: an item that cannot be
        # judged makes the whole quantifier an error, as it always did.
        where, assertion = self.where, self.assertion
        any_held = any_failed = False
        try:
            for item in items:
                frame.item = item
                if where is not None and not where(frame):
                    continue
                if assertion(frame):
                    any_held = True
                else:
                    any_failed = True
        finally:
            frame.item, frame.in_item, frame.domain = saved
        if self.quantifier is Quantifier.FOR_ANY:
            return any_held
        if self.quantifier is Quantifier.FOR_ALL:
            return not any_failed  # a violation is an item for which it does not hold
        return not any_held  # for_none: a violation is an item for which it holds


def compile_expr(expr: Expr, params: Mapping[str, Any], in_item: bool = False) -> Code:
    """`expr` as a closure; `{param: name}` values bound from `params` now; `in_item`:
    `expr` is judged for each item of a quantifier."""
    if isinstance(expr, Leaf):
        return _compile_leaf(expr, params, in_item)
    if isinstance(expr, AllOf):
        parts = tuple(compile_expr(item, params, in_item) for item in expr.items)

        def all_of(frame: Frame) -> bool:
            # A loop, not all(generator): no generator per call on the hot path.
            for part in parts:  # noqa: SIM110 - stops at the first false part, as all()
                if not part(frame):
                    return False
            return True

        return all_of
    if isinstance(expr, AnyOf):
        options = tuple(compile_expr(item, params, in_item) for item in expr.items)

        def any_of(frame: Frame) -> bool:
            for option in options:  # noqa: SIM110 - the loop above's reason, as any()
                if option(frame):
                    return True
            return False

        return any_of
    if isinstance(expr, Not):
        inner = compile_expr(expr.item, params, in_item)
        return lambda frame: not inner(frame)
    return QuantifiedCode(expr, params)
