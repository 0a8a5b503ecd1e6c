"""The policy a collector judges hosts by: rule packs, waivers, scopes and frameworks.

`load_policy` reads them all (every problem of every file reported at once) and
fingerprints the bytes it read, so a collector (or several replicas) can tell when
anything changed and re-evaluate hosts. `evaluate_policy` is the engine plus the
subject's parameter overrides and waivers: still a pure function of its inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rules.engine import evaluate
from rules.errors import Problem, RuleLoadError
from rules.language.loader import expand_paths, load_rules
from rules.language.model import RuleSet
from rules.policy.frameworks import Framework, load_frameworks
from rules.policy.scopes import Scopes, Subject, load_scopes
from rules.policy.waivers import Waiver, apply_waivers, load_waivers
from rules.results import RuleResult

__all__ = ["Evaluation", "Policy", "Subject", "evaluate_policy", "load_policy"]


@dataclass(frozen=True)
class Policy:
    ruleset: RuleSet
    waivers: tuple[Waiver, ...] = ()
    scopes: Scopes = field(default_factory=Scopes)
    frameworks: tuple[Framework, ...] = ()
    fingerprint: str = ""


@dataclass(frozen=True)
class Evaluation:
    results: list[RuleResult]
    expired_waivers: list[dict[str, Any]]


def fingerprint_files(groups: Iterable[tuple[str, Sequence[Path | str]]]) -> str:
    """sha256 over every file's role, name and bytes, in a stable order."""
    digest = hashlib.sha256()
    for role, paths in groups:
        for file in expand_paths(paths):
            digest.update(f"{role}\0{file.name}\0".encode())
            try:
                digest.update(file.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
            digest.update(b"\0")
    return digest.hexdigest()


def _check_references(
    ruleset: RuleSet, waivers: Sequence[Waiver], scopes: Scopes, frameworks: Sequence[Framework]
) -> list[Problem]:
    known = {rule.id: rule for rule in ruleset.rules}
    problems: list[Problem] = []

    def at(source: str, message: str) -> None:
        problems.append(Problem.at(source, message))

    for waiver in waivers:
        if waiver.rule_id not in known:
            at(waiver.source, f"waiver '{waiver.id}' names unknown rule '{waiver.rule_id}'")
        if waiver.selector.group and waiver.selector.group not in scopes.groups:
            at(
                waiver.source,
                f"waiver '{waiver.id}' names unknown host group '{waiver.selector.group}'",
            )
    for override in scopes.overrides:
        rule = known.get(override.rule_id)
        if rule is None:
            at(override.source, f"parameter override names unknown rule '{override.rule_id}'")
            continue
        for name in override.params:
            if name not in rule.params:
                at(override.source, f"rule '{rule.id}' has no parameter '{name}'")
    for framework in frameworks:
        for requirement in framework.requirements:
            name = f"{framework.id} requirement '{requirement.id}'"
            for rule_id in requirement.rules:
                if rule_id not in known:
                    at(requirement.source, f"{name} names unknown rule '{rule_id}'")
    return problems


def load_policy(
    rules: Sequence[Path | str],
    waivers: Sequence[Path | str] = (),
    scopes: Sequence[Path | str] = (),
    frameworks: Sequence[Path | str] = (),
) -> Policy:
    """Load everything; raise RuleLoadError with the problems of every file."""
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}
    loaders = (
        ("ruleset", load_rules, rules),
        ("waivers", load_waivers, waivers),
        ("scopes", load_scopes, scopes),
        ("frameworks", load_frameworks, frameworks),
    )
    for name, loader, paths in loaders:
        if name != "ruleset" and not paths:
            continue
        try:
            loaded[name] = loader(list(paths))
        except RuleLoadError as e:
            problems.extend(e.problems)
    if problems:
        raise RuleLoadError(problems)
    policy = Policy(
        ruleset=loaded["ruleset"],
        waivers=loaded.get("waivers", ()),
        scopes=loaded.get("scopes", Scopes()),
        frameworks=loaded.get("frameworks", ()),
        fingerprint=fingerprint_files(
            [("rules", rules), ("waivers", waivers), ("scopes", scopes), ("frameworks", frameworks)]
        ),
    )
    problems = _check_references(policy.ruleset, policy.waivers, policy.scopes, policy.frameworks)
    if problems:
        raise RuleLoadError(problems)
    return policy


def evaluate_policy(
    policy: Policy, facts: Mapping[str, Any], subject: Subject, today: date
) -> Evaluation:
    """Judge one host: scoped parameters, the engine, then waivers."""
    results = evaluate(policy.ruleset, facts, policy.scopes.params_for(subject))
    judged, expired = apply_waivers(results, policy.waivers, subject, policy.scopes.groups, today)
    return Evaluation(judged, expired)
