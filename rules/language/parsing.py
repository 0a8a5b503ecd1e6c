"""Parsing located YAML into rule expressions, collecting problems instead of raising.

`LocatedParser` holds the problem list and the generic field checks; `ExpressionParser`
turns `{path, op, value}`, `all`/`any`/`not` and quantifiers into the typed model,
checking operator values at load time so a bad regex or CIDR points at its line.
"""

from __future__ import annotations

import re
from typing import Any

from rules.errors import EvaluationError, Problem
from rules.language.model import (
    LANGUAGES,
    AllOf,
    AnyOf,
    Expr,
    Leaf,
    Localized,
    Not,
    ParamRef,
    Quantified,
    Quantifier,
)
from rules.language.operators import OPERATORS, Operator
from rules.language.templates import TemplateError, placeholders
from rules.language.yamlsource import LocatedList, LocatedMap, Position

PATH = re.compile(r"^\.$|^(\$\.)?[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$|^\$$")
EXPRESSION_FORMS = "{path, op, value}, all, any, not, for_all, for_any or for_none"
QUANTIFIER_KEYS = {"in", "key", "where", "assert"}


class LocatedParser:
    """Problem collection and generic field checks over located YAML."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, position: Position, message: str) -> None:
        self.problems.append(Problem(self.source, position.line, position.column, message))

    def loc(self, position: Position) -> str:
        return f"{self.source}:{position.line}:{position.column}"

    def unknown_keys(self, node: LocatedMap, allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.problem(
                    node.key_at(key),
                    f"unknown field '{key}' in {what} (allowed: {', '.join(sorted(allowed))})",
                )

    def required(self, node: LocatedMap, key: str, what: str) -> Any:
        if key not in node:
            self.problem(node.position, f"{what} is missing required field '{key}'")
            return None
        return node[key]

    def string(
        self,
        node: LocatedMap,
        key: str,
        what: str,
        *,
        pattern: re.Pattern[str] | None = None,
        required: bool = True,
    ) -> str | None:
        if key not in node:
            if required:
                self.problem(node.position, f"{what} is missing required field '{key}'")
            return None
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.problem(node.value_at(key), f"'{key}' must be a non-empty string, got {value!r}")
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(node.value_at(key), f"'{key}' {value!r} does not match {pattern.pattern}")
            return None
        return value

    def localized(
        self,
        node: LocatedMap,
        key: str,
        what: str,
        *,
        required: bool = True,
        template: bool = False,
    ) -> Localized | None:
        if key not in node:
            if required:
                self.problem(node.position, f"{what} is missing required field '{key}'")
            return None
        value = node[key]
        position = node.value_at(key)
        if not isinstance(value, LocatedMap):
            self.problem(
                position, f"'{key}' must be a mapping with texts in {' and '.join(LANGUAGES)}"
            )
            return None
        self.unknown_keys(value, set(LANGUAGES), f"'{key}'")
        texts: dict[str, str] = {}
        for lang in LANGUAGES:
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                self.problem(
                    value.value_at(lang) if lang in value else position,
                    f"'{key}.{lang}' must be a non-empty string",
                )
                continue
            if template:
                try:
                    placeholders(text)
                except TemplateError as e:
                    self.problem(value.value_at(lang), f"'{key}.{lang}': {e}")
            texts[lang] = text.strip()
        if len(texts) != len(LANGUAGES):
            return None
        return Localized(vi=texts["vi"], en=texts["en"])


class ExpressionParser(LocatedParser):
    """Builds expressions; every problem is recorded with its position."""

    def expr(
        self, node: Any, position: Position, params: dict[str, Any], *, top: bool = False
    ) -> Expr | None:
        if not isinstance(node, LocatedMap) or not node:
            self.problem(position, f"an expression must be a mapping: {EXPRESSION_FORMS}")
            return None
        if "op" in node or "path" in node:
            return self.leaf(node, params)
        if len(node) != 1:
            found = ", ".join(node)
            self.problem(
                node.position, f"an expression has exactly one of {EXPRESSION_FORMS}; got {found}"
            )
            return None
        (kind,) = node.keys()
        inner, inner_position = node[kind], node.value_at(kind)
        if kind in ("all", "any"):
            if not isinstance(inner, LocatedList) or not inner:
                self.problem(inner_position, f"'{kind}' needs a non-empty list of expressions")
                return None
            items = [self.expr(child, inner.item_at(i), params) for i, child in enumerate(inner)]
            if any(item is None for item in items):
                return None
            parts = tuple(item for item in items if item is not None)
            return AllOf(parts) if kind == "all" else AnyOf(parts)
        if kind == "not":
            child = self.expr(inner, inner_position, params)
            return Not(child) if child is not None else None
        if kind in {q.value for q in Quantifier}:
            return self.quantified(Quantifier(kind), inner, inner_position, params, top=top)
        self.problem(
            node.key_at(kind), f"unknown expression '{kind}' (expected {EXPRESSION_FORMS})"
        )
        return None

    def quantified(
        self,
        quantifier: Quantifier,
        node: Any,
        position: Position,
        params: dict[str, Any],
        *,
        top: bool,
    ) -> Expr | None:
        if not isinstance(node, LocatedMap):
            self.problem(
                position,
                f"'{quantifier}' needs a mapping with in, key, assert (and optional where)",
            )
            return None
        self.unknown_keys(node, QUANTIFIER_KEYS, quantifier.value)
        source = self.path(node, "in")
        key = node.get("key")
        # for_any yields no per-item findings, so only for_all/for_none need a key
        if key is None and top and quantifier is not Quantifier.FOR_ANY:
            self.problem(
                node.position,
                f"'{quantifier}' at the top of a check needs 'key' (one finding per item)",
            )
        elif key is not None:
            if not isinstance(key, str):
                self.problem(
                    node.value_at("key"),
                    "'key' must be a template string such as \"{address}:{port}\"",
                )
            else:
                try:
                    placeholders(key)
                except TemplateError as e:
                    self.problem(node.value_at("key"), f"'key': {e}")
        if "assert" not in node:
            self.problem(node.position, f"'{quantifier}' is missing 'assert'")
            return None
        assertion = self.expr(node["assert"], node.value_at("assert"), params)
        where = (
            self.expr(node["where"], node.value_at("where"), params) if "where" in node else None
        )
        if source is None or assertion is None or ("where" in node and where is None):
            return None
        return Quantified(quantifier, source, key if isinstance(key, str) else "", assertion, where)

    def path(self, node: LocatedMap, key: str) -> str | None:
        value = node.get(key)
        if not isinstance(value, str) or not PATH.match(value):
            self.problem(
                node.value_at(key) if key in node else node.position,
                f"'{key}' must be a dotted fact path such as host.os.id, got {value!r}",
            )
            return None
        return value

    def leaf(self, node: LocatedMap, params: dict[str, Any]) -> Leaf | None:
        self.unknown_keys(node, {"path", "op", "value"}, "leaf expression")
        path = self.path(node, "path")
        raw_op = node.get("op")
        try:
            op = Operator(str(raw_op))
        except ValueError:
            known = ", ".join(o.value for o in Operator)
            self.problem(
                node.value_at("op") if "op" in node else node.position,
                f"unknown operator {raw_op!r} (known: {known})",
            )
            return None
        spec = OPERATORS[op]
        value: Any = node.get("value")
        if not spec.takes_value:
            if "value" in node:
                self.problem(node.value_at("value"), f"operator '{op}' takes no value")
            return Leaf(path, op) if path else None
        if "value" not in node:
            self.problem(node.position, f"operator '{op}' needs a 'value'")
            return None
        value_position = node.value_at("value")
        if isinstance(value, LocatedMap) and set(value) == {"param"}:
            name = value["param"]
            if not isinstance(name, str) or name not in params:
                self.problem(
                    value_position,
                    f"unknown parameter {name!r} (declare it under the rule's params)",
                )
                return None
            checked: Any = params[name]
            value = ParamRef(name)
        else:
            checked = value
        if spec.check_value is not None:
            try:
                spec.check_value(checked)
            except EvaluationError as e:
                self.problem(value_position, f"operator '{op}' {e}")
                return None
        return Leaf(path, op, plain_data(value)) if path else None


def plain_data(value: Any) -> Any:
    """Located containers become plain tuples/dicts so the model stays immutable data."""
    if isinstance(value, ParamRef):
        return value
    if isinstance(value, list):
        return tuple(plain_data(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    return value
