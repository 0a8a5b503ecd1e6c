"""`canhgac-agent`: the agent's command line (a thin layer over the agent's modules).

Exit codes: 0 success; 1 a check failed at or above `--fail-on`, or a report could
not be delivered, or another runtime error; 2 bad usage, configuration, rules or facts
file; 3 (`check`) no failure, but a rule at or above `--fail-on` could not be evaluated.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from agent import __version__
from agent.cli.common import (
    SEVERITIES,
    TOKEN_ENV,
    UsageFailure,
    agent_errors,
    config_option,
    lang_option,
    state_dir_option,
)
from agent.cli.enrol import enroll
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError
from agent.output.terminal import printable
from rules.tooling.cli import rules_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="canhgac-agent")
def main() -> None:
    """canhgac agent: collect security facts about this host, check them, ship them."""


main.add_command(rules_group, name="rules")
main.add_command(enroll)


def _new_document(config: AgentConfig, state_dir: Path | None) -> dict[str, Any]:
    """Collect a document for shipping or saving: takes the next sequence number and
    records, in the state, when each pending update was first seen."""
    from agent.collectors.base import CollectContext
    from agent.document import DEFAULT_BUDGET_SECONDS, collect_facts
    from agent.state.identity import next_identity
    from agent.state.pending import remember_pending
    from agent.state.store import StateStore, default_state_dir

    store = StateStore(state_dir or config.state_dir or default_state_dir())
    identity = next_identity(store, config.agent_id, Path("/"))
    ctx = CollectContext(settings=config.collect_settings(), first_seen=store.load().pending_seen)
    document = collect_facts(
        ctx, identity, budget_seconds=config.budget_seconds or DEFAULT_BUDGET_SECONDS
    )
    remember_pending(store, document)
    return document


def _local_document(config: AgentConfig) -> dict[str, Any]:
    """Collect a document without taking a sequence number (seq 0): nothing is written.

    An existing state is read, when readable, only so that pending updates keep the
    age the agent's regular runs have been counting.
    """
    from agent.collectors.base import CollectContext
    from agent.document import DEFAULT_BUDGET_SECONDS, collect_facts
    from agent.state.identity import Identity, derived_agent_id
    from agent.state.pending import peek_first_seen

    root = Path("/")
    ctx = CollectContext(
        settings=config.collect_settings(), first_seen=peek_first_seen(config.state_dir)
    )
    agent_id = derived_agent_id(config.agent_id, root) or "local"
    return collect_facts(
        ctx,
        Identity(agent_id=agent_id, seq=0),
        budget_seconds=config.budget_seconds or DEFAULT_BUDGET_SECONDS,
    )


def _dump(document: Any) -> str:
    # ASCII-only JSON: non-ASCII text from the host (including C1 controls and bidi
    # overrides) reaches the terminal as \u escapes, never raw.
    return json.dumps(document, indent=2) + "\n"


@main.command()
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write the facts document (JSON); '-' is standard output.",
)
@click.option(
    "--no-state",
    is_flag=True,
    help="One-off inspection: seq 0, no seq_epoch, nothing written to the state directory.",
)
@state_dir_option
@config_option
def collect(output: Path, no_state: bool, state_dir: Path | None, config_path: Path | None) -> None:
    """Collect facts about this host and print the canhgac.facts/v1 document.

    Each run takes the next sequence number from the agent's state (as root,
    /var/lib/canhgac-agent, created when missing) and records there when each pending
    update was first seen. Use --no-state to look without changing anything.
    """
    if no_state and state_dir is not None:
        raise UsageFailure("--no-state and --state-dir cannot be used together")
    with agent_errors():
        config = load_config(config_path)
        document = _local_document(config) if no_state else _new_document(config, state_dir)
    text = _dump(document)
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, "utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from e


@main.command()
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory (repeatable; default: the built-in packs).",
)
@click.option(
    "--facts",
    "facts_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Check this facts document instead of collecting one now ('-' reads stdin).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default="high",
    show_default=True,
    help="Exit with 1 when a rule of this severity or higher fails, 3 when one is in error.",
)
@lang_option
@config_option
def check(
    *,
    rule_paths: tuple[Path, ...],
    facts_path: Path | None,
    output_format: str,
    fail_on: str,
    lang: str,
    config_path: Path | None,
) -> None:
    """Check this host (or a facts file) against the rules and print what fails.

    The score shown is local: built-in (or --rules) rules with default weights; the
    collector's score is the authoritative one. Nothing is written on the host.

    \b
    Exit codes:
      0  no rule at or above --fail-on fails or is in error
      1  a rule at or above --fail-on fails
      2  bad usage, configuration, rules or facts file
      3  no failure, but a rule at or above --fail-on could not be evaluated (error)
    """
    from agent.output.check import (
        errors_at_or_above,
        fails_at_or_above,
        format_score,
        format_table,
        score_dict,
    )
    from rules.engine import evaluate
    from rules.errors import RuleLoadError
    from rules.language.loader import builtin_packs_dir, load_rules
    from rules.language.model import Severity
    from rules.policy.scoring import score_results

    with agent_errors():
        config = load_config(config_path)
    paths = list(rule_paths) or list(config.rules) or [builtin_packs_dir()]
    try:
        ruleset = load_rules(paths)
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(printable(problem), err=True)
        raise UsageFailure(f"{len(e.problems)} problem(s) in the rules") from e

    if facts_path is not None:
        facts = _read_facts(facts_path)
    else:
        with agent_errors():
            facts = _local_document(config)
    _note_collector_errors(facts, lang)

    results = evaluate(ruleset, facts)
    score = score_results(results)
    if output_format == "json":
        payload = {
            "results": [r.to_dict() for r in results],
            "score": {**score_dict(score), "local": True},
        }
        click.echo(_dump(payload), nl=False)
    else:
        for line in format_table(results, lang):
            click.echo(line)
        click.echo()
        click.echo(format_score(score, lang))
    if fails_at_or_above(results, Severity(fail_on)):
        sys.exit(1)
    if errors_at_or_above(results, Severity(fail_on)):
        sys.exit(3)


def _read_facts(path: Path) -> dict[str, Any]:
    from rules.facts import SCHEMA_ID

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
        document = json.loads(text)
    except OSError as e:
        raise UsageFailure(f"cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise UsageFailure(f"{path} is not valid JSON: {e}") from e
    # A cheap structural check instead of JSON Schema validation: the agent carries no
    # schema library, and the rules report `error` for anything malformed deeper down.
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_ID:
        raise UsageFailure(f"{path} is not a {SCHEMA_ID} document")
    if not isinstance(document.get("errors"), list):
        raise UsageFailure(f"{path} is not a valid {SCHEMA_ID} document: 'errors' must be a list")
    return document


def _note_collector_errors(facts: dict[str, Any], lang: str) -> None:
    # Rules reading a failed domain report `error`; saying why up front saves a hunt.
    errors = facts.get("errors")
    if not isinstance(errors, list):
        return
    prefix = "lưu ý" if lang == "vi" else "note"
    for entry in errors:
        if isinstance(entry, dict):
            line = f"{entry.get('domain')}: {entry.get('kind')}: {entry.get('reason')}"
            click.echo(f"{prefix}: {printable(line)}", err=True)


@main.command()
@click.option("--once", is_flag=True, help="Collect and ship one report, then exit.")
@click.option("--server", help="Collector URL, e.g. https://canhgac.example.gov.vn")
@click.option(
    "--token",
    help=f"Agent token (visible to other users in the process list: prefer --token-file"
    f" or ${TOKEN_ENV}).",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the agent token.",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificate(s) (PEM) to verify the collector with, for a private CA.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the collector.",
)
@state_dir_option
@config_option
@lang_option
def run(
    *,
    once: bool,
    server: str | None,
    token: str | None,
    token_file: Path | None,
    ca_file: Path | None,
    timeout: float,
    state_dir: Path | None,
    config_path: Path | None,
    lang: str,
) -> None:
    """Collect facts and ship them to the collector."""
    if not once:
        raise UsageFailure(
            "only --once is available for now: a loop mode comes with durable delivery;"
            " schedule `canhgac-agent run --once` with a systemd timer meanwhile"
        )
    from agent.delivery.transport import HttpTransport
    from agent.errors import ShippingError
    from agent.output.messages import delivery_line, shipping_message

    with agent_errors():
        config = load_config(config_path)
        server_url = server or config.server
        if not server_url:
            raise UsageFailure("no collector URL: pass --server URL or set agent.server")
        transport = HttpTransport(
            server_url,
            _token(token, token_file, config, state_dir),
            ca_file=ca_file or config.ca_file,
            timeout=timeout,
        )
        document = _new_document(config, state_dir)
    try:
        delivery = transport.send(document)
    except ShippingError as e:
        raise click.ClickException(printable(shipping_message(e, lang))) from e
    click.echo(
        delivery_line(
            printable(delivery.report_id), delivery.status, delivery.score, delivery.failing, lang
        )
    )


def _token(
    token: str | None, token_file: Path | None, config: AgentConfig, state_dir: Path | None
) -> str:
    """--token, --token-file, $CANHGAC_TOKEN, agent.token_file, then the enrolled token."""
    from agent.delivery.enrolment import TOKEN_FILE_NAME
    from agent.state.store import default_state_dir

    if token and token_file:
        raise UsageFailure("--token and --token-file cannot be used together")
    if token:
        return token
    path = token_file
    if path is None:
        from_env = os.environ.get(TOKEN_ENV)
        if from_env:
            return from_env
        path = config.token_file
    if path is None:
        enrolled = (state_dir or config.state_dir or default_state_dir()) / TOKEN_FILE_NAME
        path = enrolled if enrolled.is_file() else None
    if path is None:
        raise UsageFailure(
            f"no token: run `canhgac-agent enroll`, or pass --token-file FILE, set {TOKEN_ENV},"
            " or set agent.token_file"
        )
    try:
        return path.read_text("utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the token file {path}: {e.strerror or e}") from e
