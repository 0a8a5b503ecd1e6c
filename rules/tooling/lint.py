"""`rules lint`: checks beyond loading that keep the shipped policy honest.

- every fact path a rule reads exists in the facts JSON Schema (a typo would
  otherwise surface only as `error` results on every host);
- every template placeholder names a field or a declared parameter;
- every rule has fixtures, at least one `pass` and one `fail` case;
- cross references of frameworks, waivers and scopes (checked by `load_policy`).
Loading already rejects empty `all`/`any`, bad regexes, missing languages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rules.errors import Problem
from rules.language.model import AllOf, AnyOf, Expr, Leaf, Not, Quantified, Rule, RuleSet
from rules.language.templates import placeholders
from rules.results import Status
from rules.tooling.fixtures import FixtureCase

Schema = Mapping[str, Any]


class _SchemaWalker:
    """Follows dotted paths through a JSON Schema ($ref, properties, items, one/anyOf)."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def deref(self, node: Schema) -> Schema:
        seen = 0
        while "$ref" in node and seen < 32:
            pointer = str(node["$ref"]).removeprefix("#/").split("/")
            target: Any = self.root
            for part in pointer:
                target = target[part]
            node = target
            seen += 1
        return node

    def alternatives(self, node: Schema) -> list[Schema]:
        node = self.deref(node)
        options = [self.deref(n) for n in node.get("oneOf", []) + node.get("anyOf", [])]
        return [node, *options]

    def step(self, node: Schema, name: str) -> Schema | None:
        for option in self.alternatives(node):
            if name.isdigit() and "items" in option:
                return self.deref(option["items"])
            properties = option.get("properties", {})
            if name in properties:
                return self.deref(properties[name])
        return None

    def items(self, node: Schema) -> Schema | None:
        for option in self.alternatives(node):
            if "items" in option:
                return self.deref(option["items"])
        return None

    def resolve(self, start: Schema, path: str) -> tuple[Schema | None, str | None]:
        """The schema at `path` from `start`, or None and the first step not found."""
        node: Schema | None = start
        for name in path.split("."):
            assert node is not None
            found = self.step(node, name)
            if found is None:
                return None, name
            node = found
        return node, None


def _walk(expr: Expr, item: Schema | None) -> Iterator[tuple[str, Schema | None, Expr]]:
    """(path, context schema or None for the root, expression) for every path read."""
    if isinstance(expr, Leaf):
        yield expr.path, item, expr
    elif isinstance(expr, AllOf | AnyOf):
        for child in expr.items:
            yield from _walk(child, item)
    elif isinstance(expr, Not):
        yield from _walk(expr.item, item)
    elif isinstance(expr, Quantified):
        yield expr.source, item, expr


class _RuleLinter:
    def __init__(self, schema: Schema) -> None:
        self.walker = _SchemaWalker(schema)
        self.schema = schema
        self.problems: list[Problem] = []

    def report(self, rule: Rule, message: str) -> None:
        self.problems.append(Problem.at(rule.source, f"{rule.id}: {message}"))

    def resolve(self, rule: Rule, path: str, context: Schema | None) -> Schema | None:
        if path in (".", "$"):
            return context if (path == "." and context is not None) else self.schema
        start, relative = (
            (self.schema, path[2:])
            if path.startswith("$.")
            else (
                context if context is not None else self.schema,
                path,
            )
        )
        node, missing = self.walker.resolve(start, relative)
        if node is None:
            where = "item" if context is not None and not path.startswith("$.") else "facts"
            self.report(
                rule, f"path '{path}' is not in the facts schema ({where} has no '{missing}')"
            )
        return node

    def expression(self, rule: Rule, expr: Expr, context: Schema | None) -> None:
        for path, ctx, node in _walk(expr, context):
            resolved = self.resolve(rule, path, ctx)
            if isinstance(node, Quantified) and resolved is not None:
                item = self.walker.items(resolved)
                if item is None:
                    self.report(rule, f"'{path}' is not a list in the facts schema")
                    continue
                self.expression(rule, node.assertion, item)
                if node.where is not None:
                    self.expression(rule, node.where, item)
                self.templates(rule, [node.key], item)

    def templates(self, rule: Rule, texts: Sequence[str], context: Schema | None) -> None:
        for text in texts:
            for name in placeholders(text):
                if name.startswith("params."):
                    if name.removeprefix("params.") not in rule.params:
                        self.report(rule, f"template names undeclared parameter '{name}'")
                else:
                    self.resolve(rule, name, context)

    def rule(self, rule: Rule) -> None:
        self.expression(rule, rule.check, None)
        if rule.applies_to is not None:
            self.expression(rule, rule.applies_to, None)
        context = None
        if isinstance(rule.check, Quantified):
            source, _ = self.walker.resolve(self.schema, rule.check.source.removeprefix("$."))
            context = self.walker.items(source) if source is not None else None
            if context is None:
                return  # already reported
        self.templates(rule, [rule.message.vi, rule.message.en], context)


def lint_rules(ruleset: RuleSet, schema: Schema, fixtures: Sequence[FixtureCase]) -> list[Problem]:
    linter = _RuleLinter(schema)
    statuses: dict[str, set[Status]] = {}
    for case in fixtures:
        statuses.setdefault(case.rule_id, set()).add(case.status)
    for rule in ruleset.rules:
        linter.rule(rule)
        covered = statuses.get(rule.id, set())
        missing = [s.value for s in (Status.PASS, Status.FAIL) if s not in covered]
        if missing:
            linter.report(rule, f"no fixture case with status {' and '.join(missing)}")
    return sorted(set(linter.problems))


def lint_fixture_documents(fixtures: Sequence[FixtureCase], schema: Schema) -> list[Problem] | None:
    """Each fixture's document must be a valid facts document, or it tests nothing real.

    Needs fastjsonschema (the collector's and the test suite's validator); returns
    None when it is not installed, as on an agent-only install.
    """
    try:
        # Optional: not installed with the agent alone (listed in tests/test_layout.py).
        import fastjsonschema  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError:
        return None
    validate = fastjsonschema.compile(dict(schema))
    problems = []
    for case in fixtures:
        try:
            validate(case.document())
        except fastjsonschema.JsonSchemaValueException as e:
            message = f"{case.rule_id} '{case.name}': facts do not match the schema: {e.message}"
            problems.append(Problem.at(case.source, message))
    return problems
