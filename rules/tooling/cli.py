"""The `rules` click group, mounted in both CLIs (`canhgac-agent rules`, `canhgac-server rules`).

Kept thin: it parses arguments, calls the loaders, linter and fixture runner, and
prints. Problems go to stderr as `file:line:col: message`, one per line, the format
editors and CI annotate. Exit status: 0 clean, 1 problems found, 2 usage errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from rules.errors import Problem, RuleLoadError
from rules.facts import load_rule_schema
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import RuleSet
from rules.policy.bundle import load_policy
from rules.policy.frameworks import Framework, builtin_frameworks_dir, load_frameworks
from rules.tooling.explain import explain_rule
from rules.tooling.fixtures import builtin_fixtures_dir, load_fixtures, run_fixtures
from rules.tooling.lint import lint_fixture_documents, lint_rules

T = TypeVar("T")
PathArgs = tuple[Path, ...]
EXISTING = click.Path(exists=True, path_type=Path)


def _fail(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{len(problems)} {noun} found", err=True)
    sys.exit(1)


def _load(loader: Callable[[list[Path]], T], paths: PathArgs, default: Path) -> T:
    try:
        return loader(list(paths) or [default])
    except RuleLoadError as e:
        _fail(e.problems)
        raise AssertionError("unreachable") from e


def _ruleset(paths: PathArgs) -> RuleSet:
    return _load(load_rules, paths, builtin_packs_dir())


def _frameworks(paths: PathArgs) -> tuple[Framework, ...]:
    return _load(load_frameworks, paths, builtin_frameworks_dir())


@click.group(name="rules")
def rules_group() -> None:
    """Validate, lint, test and inspect rule packs and frameworks."""


@rules_group.command("validate")
@click.argument("paths", nargs=-1, type=EXISTING)
def validate(paths: PathArgs) -> None:
    """Check rule files (or directories of them); print every problem as file:line:col."""
    ruleset = _ruleset(paths)
    click.echo(f"OK: {len(ruleset.rules)} rules in {len(ruleset.packs)} packs")


@rules_group.command("lint")
@click.option(
    "--rules", "rule_paths", multiple=True, type=EXISTING, help="Packs (default: built-in)."
)
@click.option(
    "--fixtures",
    "fixture_paths",
    multiple=True,
    type=EXISTING,
    help="Fixtures (default: built-in).",
)
@click.option(
    "--frameworks",
    "framework_paths",
    multiple=True,
    type=EXISTING,
    help="Frameworks (default: built-in).",
)
@click.option(
    "--waivers", "waiver_paths", multiple=True, type=EXISTING, help="Waiver files to check."
)
@click.option("--scopes", "scope_paths", multiple=True, type=EXISTING, help="Scope files to check.")
def lint(
    rule_paths: PathArgs,
    fixture_paths: PathArgs,
    framework_paths: PathArgs,
    waiver_paths: PathArgs,
    scope_paths: PathArgs,
) -> None:
    """Paths exist in the facts schema, fixtures cover every rule, references resolve."""
    try:
        policy = load_policy(
            list(rule_paths) or [builtin_packs_dir()],
            waivers=list(waiver_paths),
            scopes=list(scope_paths),
            frameworks=list(framework_paths) or [builtin_frameworks_dir()],
        )
        fixtures = load_fixtures(list(fixture_paths) or [builtin_fixtures_dir()])
    except RuleLoadError as e:
        _fail(e.problems)
        return
    problems = lint_rules(policy.ruleset, load_rule_schema(), fixtures)
    fixture_problems = lint_fixture_documents(fixtures, load_rule_schema())
    if fixture_problems is None:
        click.echo("note: fastjsonschema not installed; fixture documents not checked", err=True)
    if problems or fixture_problems:
        _fail(problems + (fixture_problems or []))
    click.echo(
        f"OK: {len(policy.ruleset.rules)} rules, {len(fixtures)} fixture cases, "
        f"{len(policy.frameworks)} frameworks, {len(policy.waivers)} waivers"
    )


@rules_group.command("test")
@click.argument("paths", nargs=-1, type=EXISTING)
@click.option(
    "--rules", "rule_paths", multiple=True, type=EXISTING, help="Packs (default: built-in)."
)
def test(paths: PathArgs, rule_paths: PathArgs) -> None:
    """Run rule fixtures (default: the built-in ones) and report every disagreement."""
    ruleset = _ruleset(rule_paths)
    cases = _load(load_fixtures, paths, builtin_fixtures_dir())
    outcomes = run_fixtures(ruleset, cases)
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        case = outcome.case
        click.echo(f"{case.source}: {case.rule_id} '{case.name}': {outcome.problem}", err=True)
    click.echo(f"rule fixtures: {len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)


@rules_group.command("list")
@click.argument("paths", nargs=-1, type=EXISTING)
@click.option("--frameworks", "framework_paths", multiple=True, type=EXISTING)
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def list_rules(paths: PathArgs, framework_paths: PathArgs, lang: str) -> None:
    """List rules: id, severity, pack, frameworks and title."""
    ruleset = _ruleset(paths)
    frameworks = _frameworks(framework_paths)
    rows = []
    for rule in ruleset.rules:
        mapped = sorted({f.id for f in frameworks if f.requirements_for(rule.id)})
        rows.append(
            (
                rule.id,
                rule.severity.value,
                rule.pack_id,
                ",".join(mapped) or "-",
                rule.title.get(lang),
            )
        )
    header = ("ID", "SEVERITY", "PACK", "FRAMEWORKS", "TITLE")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        )


@rules_group.command("explain")
@click.argument("rule_id")
@click.option(
    "--rules", "rule_paths", multiple=True, type=EXISTING, help="Packs (default: built-in)."
)
@click.option("--frameworks", "framework_paths", multiple=True, type=EXISTING)
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def explain(rule_id: str, rule_paths: PathArgs, framework_paths: PathArgs, lang: str) -> None:
    """Explain one rule: what it checks in words, why, how to fix, parameters, mappings."""
    ruleset = _ruleset(rule_paths)
    rule = ruleset.get(rule_id.upper())
    if rule is None:
        raise click.UsageError(f"unknown rule '{rule_id}' (see `rules list`)")
    click.echo(explain_rule(rule, _frameworks(framework_paths), lang))
