"""Load rule packs from YAML into the typed model, reporting every problem at once.

Like pySigma's validators, each problem carries `file:line:column`; unlike a first-
error parser, a file's problems are all collected before `RuleLoadError` is raised,
so an author fixes a file in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rules.errors import Problem, RuleLoadError
from rules.language.model import (
    OsFamily,
    Pack,
    Rule,
    RuleSet,
    Severity,
)
from rules.language.parsing import ExpressionParser, plain_data
from rules.language.yamlsource import LocatedList, LocatedMap, Position, load_located

# Rule ids are stored in 128-character columns; 64 leaves room and stays readable.
RULE_ID = re.compile(r"^(?=.{1,64}$)[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
PACK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A fix is printed for the administrator to run as is: one line, no `<placeholder>`
# to fill in (those belong in the remediation text), and short enough to read.
FIX_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")
FIX_MAX_CHARS = 400
FIX_FAMILIES = ", ".join(family.value for family in OsFamily)

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
    "fix": False,
}
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


def read_yaml_files(
    paths: Iterable[Path | str], what: str, problems: list[Problem]
) -> Iterator[tuple[Path, Any]]:
    """(file, located data) for each YAML file under `paths` that parses.

    Unreadable files and YAML problems are appended to `problems`, so each loader
    reports them with its own and keeps going to the next file.
    """
    for file in expand_paths(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(str(file), 1, 1, f"cannot read {what} file: {e}"))
            continue
        data, file_problems = load_located(text, str(file))
        problems.extend(file_problems)
        if data is not None:
            yield file, data


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
                Problem.at(
                    pack.source, f"duplicate pack id '{pack.id}' (also {seen_packs[pack.id]})"
                )
            )
        seen_packs.setdefault(pack.id, pack.source)
        for rule in pack.rules:
            if rule.id in seen_rules:
                problems.append(
                    Problem.at(
                        rule.source,
                        f"duplicate rule id '{rule.id}' (first defined at {seen_rules[rule.id]})",
                    )
                )
            seen_rules.setdefault(rule.id, rule.source)
        packs.append(pack)
    if problems:
        raise RuleLoadError(problems)
    return RuleSet(packs=tuple(packs))


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


class _PackParser(ExpressionParser):
    """Turns one located YAML document into a Pack, collecting problems as it goes."""

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
        elif "pack" in data:  # present but not a mapping (null included: never silent)
            self.problem(data.value_at("pack"), "'pack' must be a mapping with id, version, title")
        rules: list[Rule] = []
        if isinstance(rules_node, LocatedList):
            if not rules_node:
                self.problem(rules_node.position, "'rules' is empty")
            for index, node in enumerate(rules_node):
                rule = self.rule(node, rules_node.item_at(index), pack_id)
                if rule is not None:
                    rules.append(rule)
        elif "rules" in data:
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
        fix = self.fix(node)
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
            fix=fix,
        )

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
        return {name: plain_data(default) for name, default in value.items()}

    def fix(self, node: LocatedMap) -> dict[OsFamily, str]:
        """`fix: {family: command}`: every problem reported, each at its own line."""
        if "fix" not in node:
            return {}
        value = node["fix"]
        if not isinstance(value, LocatedMap) or not value:
            self.problem(
                node.value_at("fix"),
                f"'fix' must be a mapping of OS family to command (families: {FIX_FAMILIES})",
            )
            return {}
        fixes: dict[OsFamily, str] = {}
        for name, command in value.items():
            try:
                family = OsFamily(name)
            except ValueError:
                self.problem(
                    value.key_at(name),
                    f"unknown OS family '{name}' in 'fix' (families: {FIX_FAMILIES})",
                )
                continue
            problem = _fix_problem(command)
            if problem is not None:
                self.problem(value.value_at(name), f"'fix.{name}' {problem}")
                continue
            fixes[family] = command.strip()
        return fixes


def _fix_problem(command: Any) -> str | None:
    """What is wrong with one fix command, or None."""
    if not isinstance(command, str):
        return f"must be a command (a string), got {command!r}"
    text = command.strip()
    if not text:
        return "must be a non-empty command"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "must be one line without control characters (join commands with &&)"
    if len(text) > FIX_MAX_CHARS:
        return f"is {len(text)} characters long (at most {FIX_MAX_CHARS})"
    if found := FIX_PLACEHOLDER.search(text):
        return (
            f"has the placeholder {found.group()!r}: a fix runs as shown "
            "(explain what to fill in in 'remediation' instead)"
        )
    return None
