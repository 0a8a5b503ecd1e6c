"""The `rules` click group, mounted in both CLIs (`canhgac-agent rules`, `canhgac-server rules`).

Kept thin: it parses arguments, calls the loader, and prints. Problems go to stderr
as `file:line:col: message`, one per line, the format editors and CI annotate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rules.errors import RuleLoadError
from rules.loader import builtin_packs_dir, load_rules
from rules.model import RuleSet


def _load_or_exit(paths: tuple[Path, ...]) -> RuleSet:
    try:
        return load_rules(list(paths) or [builtin_packs_dir()])
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        noun = "problem" if len(e.problems) == 1 else "problems"
        click.echo(f"{len(e.problems)} {noun} found", err=True)
        sys.exit(1)


@click.group(name="rules")
def rules_group() -> None:
    """Validate and inspect rule packs."""


@rules_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check rule files (or directories of them); print every problem as file:line:col."""
    ruleset = _load_or_exit(paths)
    click.echo(f"OK: {len(ruleset.rules)} rules in {len(ruleset.packs)} packs")


@rules_group.command("list")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def list_rules(paths: tuple[Path, ...], lang: str) -> None:
    """List rules: id, severity, pack and title."""
    ruleset = _load_or_exit(paths)
    rows = [(r.id, r.severity.value, r.pack_id, r.title.get(lang)) for r in ruleset.rules]
    widths = [
        max([len(h), *(len(row[i]) for row in rows)])
        for i, h in enumerate(("ID", "SEVERITY", "PACK"))
    ]
    header = ("ID", "SEVERITY", "PACK", "TITLE")
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )
