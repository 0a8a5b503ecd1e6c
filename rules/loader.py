"""Load rule packs from YAML into the typed model, reporting every problem at once.

Like pySigma's validators, each problem carries `file:line:column`; unlike a first-
error parser, a file's problems are all collected before `RuleLoadError` is raised,
so an author fixes a file in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rules.errors import EvaluationError, Problem, RuleLoadError
from rules.model import (
    LANGUAGES,
    AllOf,
    AnyOf,
    Expr,
    Leaf,
    Localized,
    Not,
    Pack,
    ParamRef,
    Quantified,
    Quantifier,
    Rule,
    RuleSet,
    Severity,
)
from rules.operators import OPERATORS, Operator
from rules.templates import TemplateError, placeholders
from rules.yamlsource import LocatedList, LocatedMap, Position, load_located

RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
PACK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PATH = re.compile(r"^\.$|^(\$\.)?[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$|^\$$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

RULE_KEYS = {
    "id": True,
    "title": True,
    "severity": True,
    "rationale": True,
    "remediation": True,
    "check": True,
    "message": True,
    "references": False,
    "params": False,
    "applies_to": False,
}
EXPRESSION_FORMS = "{path, op, value}, all, any, not, for_all, for_any or for_none"
QUANTIFIER_KEYS = {"in", "key", "where", "assert"}
RULE_FILE_SUFFIXES = (".yaml", ".yml")


def builtin_packs_dir() -> Path:
    """The directory of the packs shipped with canhgac."""
    return Path(str(resources.files("rules").joinpath("packs")))


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given; directories expanded to their rule files, sorted for stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES))
        else:
            files.append(path)
    return files


def load_rules(paths: Sequence[Path | str]) -> RuleSet:
    """Load every pack under `paths`; raise RuleLoadError listing every problem found."""
    packs: list[Pack] = []
    problems: list[Problem] = []
    seen_rules: dict[str, str] = {}
    seen_packs: dict[str, str] = {}
    files = expand_paths(paths)
    if not files:
        raise RuleLoadError([Problem(str(p), 1, 1, "no rule files found") for p in paths])
    for file in files:
        pack, file_problems = load_pack_file(file)
        problems.extend(file_problems)
        if pack is None:
            continue
        if pack.id in seen_packs:
            problems.append(
                _at(pack.source, f"duplicate pack id '{pack.id}' (also {seen_packs[pack.id]})")
            )
        seen_packs.setdefault(pack.id, pack.source)
        for rule in pack.rules:
            if rule.id in seen_rules:
                problems.append(
                    _at(
                        rule.source,
                        f"duplicate rule id '{rule.id}' (first defined at {seen_rules[rule.id]})",
                    )
                )
            seen_rules.setdefault(rule.id, rule.source)
        packs.append(pack)
    if problems:
        raise RuleLoadError(problems)
    return RuleSet(packs=tuple(packs))


def _at(source: str, message: str) -> Problem:
    """A problem at a model object's `file:line:col` source."""
    file, line, column = source.rsplit(":", 2)
    return Problem(file, int(line), int(column), message)


def load_pack_file(path: Path) -> tuple[Pack | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(str(path), 1, 1, f"cannot read rule file: {e}")]
    return load_pack_text(text, str(path))


def load_pack_text(text: str, source: str) -> tuple[Pack | None, list[Problem]]:
    data, problems = load_located(text, source)
    if data is None and problems:
        return None, problems
    parser = _PackParser(source)
    pack = parser.pack(data)
    problems = problems + parser.problems
    return (pack if not problems else None), problems


class _PackParser:
    """Turns one located YAML document into a Pack, collecting problems as it goes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, position: Position, message: str) -> None:
        self.problems.append(Problem(self.source, position.line, position.column, message))

    def loc(self, position: Position) -> str:
        return f"{self.source}:{position.line}:{position.column}"

    # -- structure ---------------------------------------------------------

    def pack(self, data: Any) -> Pack | None:
        if not isinstance(data, LocatedMap):
            self.problem(Position(1, 1), "a rule file must be a mapping with 'pack' and 'rules'")
            return None
        self.unknown_keys(data, {"pack", "rules"}, "rule file")
        header = self.required(data, "pack", "rule file")
        rules_node = self.required(data, "rules", "rule file")
        pack_id, version, title = "", "", None
        if isinstance(header, LocatedMap):
            self.unknown_keys(header, {"id", "version", "title"}, "pack")
            pack_id = self.string(header, "id", "pack", pattern=PACK_ID) or ""
            version = self.string(header, "version", "pack") or ""
            title = self.localized(header, "title", "pack")
        elif header is not None:
            self.problem(data.value_at("pack"), "'pack' must be a mapping with id, version, title")
        rules: list[Rule] = []
        if isinstance(rules_node, LocatedList):
            if not rules_node:
                self.problem(rules_node.position, "'rules' is empty")
            for index, node in enumerate(rules_node):
                rule = self.rule(node, rules_node.item_at(index), pack_id)
                if rule is not None:
                    rules.append(rule)
        elif rules_node is not None:
            self.problem(data.value_at("rules"), "'rules' must be a list of rules")
        if self.problems or title is None:
            return None
        return Pack(pack_id, version, title, tuple(rules), self.loc(data.position))

    def rule(self, node: Any, position: Position, pack_id: str) -> Rule | None:
        if not isinstance(node, LocatedMap):
            self.problem(position, "a rule must be a mapping")
            return None
        before = len(self.problems)
        self.unknown_keys(node, set(RULE_KEYS), "rule")
        for key, required in RULE_KEYS.items():
            if required and key not in node:
                self.problem(node.position, f"rule is missing required field '{key}'")
        rule_id = self.string(node, "id", "rule", pattern=RULE_ID, required=False)
        severity = self.severity(node)
        title = self.localized(node, "title", "rule", required=False)
        rationale = self.localized(node, "rationale", "rule", required=False)
        remediation = self.localized(node, "remediation", "rule", required=False)
        message = self.localized(node, "message", "rule", required=False, template=True)
        references = self.references(node)
        params = self.params(node)
        check = (
            self.expr(node["check"], node.value_at("check"), params, top=True)
            if "check" in node
            else None
        )
        applies_to = (
            self.expr(node["applies_to"], node.value_at("applies_to"), params)
            if "applies_to" in node
            else None
        )
        if len(self.problems) > before:
            return None
        assert rule_id and severity and title and rationale and remediation and message and check
        return Rule(
            id=rule_id,
            title=title,
            severity=severity,
            rationale=rationale,
            remediation=remediation,
            check=check,
            message=message,
            pack_id=pack_id,
            references=references,
            params=params,
            applies_to=applies_to,
            source=self.loc(node.position),
        )

    # -- fields ------------------------------------------------------------

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

    def severity(self, node: LocatedMap) -> Severity | None:
        if "severity" not in node:
            return None
        value = node["severity"]
        try:
            return Severity(value)
        except ValueError:
            allowed = " | ".join(s.value for s in Severity)
            self.problem(node.value_at("severity"), f"severity {value!r} is not one of {allowed}")
            return None

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

    def references(self, node: LocatedMap) -> tuple[str, ...]:
        value = node.get("references", [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(node.value_at("references"), "'references' must be a list of strings")
            return ()
        return tuple(value)

    def params(self, node: LocatedMap) -> dict[str, Any]:
        if "params" not in node:
            return {}
        value = node["params"]
        if not isinstance(value, LocatedMap):
            self.problem(
                node.value_at("params"), "'params' must be a mapping of name: default value"
            )
            return {}
        for name in value:
            if not PARAM_NAME.match(name):
                self.problem(
                    value.key_at(name), f"parameter name {name!r} must match {PARAM_NAME.pattern}"
                )
        return {name: _plain(default) for name, default in value.items()}

    # -- expressions -------------------------------------------------------

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
            if name not in params:
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
        return Leaf(path, op, _plain(value)) if path else None


def _plain(value: Any) -> Any:
    """Located containers become plain tuples/dicts so the model stays immutable data."""
    if isinstance(value, ParamRef):
        return value
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
