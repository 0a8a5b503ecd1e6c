"""`canhgac-agent`: the agent's command line. It parses options, calls `agent.app` and
prints through `agent.output`; the orchestration itself lives in `agent.app`.

Exit codes: 0 success; 1 a check failed at or above `--fail-on`, or a report could
not be delivered, or another runtime error; 2 bad usage, configuration, rules or facts
file; 3 (`check`) no failure, but a rule at or above `--fail-on` could not be evaluated.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from agent import __version__, app
from agent.cli.common import (
    SEVERITIES,
    TOKEN_ENV,
    UsageFailure,
    agent_errors,
    config_option,
    lang_option,
    state_dir_option,
)
from agent.cli.configcheck import config_group
from agent.cli.discover import discover
from agent.cli.enrol import enroll
from agent.config import load_config, parse_duration
from agent.daemon import Daemon, Setup, Shipped, collect_and_ship, open_spool
from agent.delivery.spool import Outcome
from agent.output.check import (
    Layout,
    check_command,
    errors_at_or_above,
    fails_at_or_above,
    format_report,
    format_score,
    note_line,
    note_lines,
    remediations,
)
from agent.output.check_json import check_document
from agent.output.events import EventLog, LogFormat
from agent.output.messages import (
    carry_error_line,
    delivery_line,
    dropped_line,
    kept_line,
    quarantined_line,
    shipping_message,
    spool_error_line,
)
from agent.worker import CycleMode
from rules.errors import RuleLoadError
from rules.language.model import Severity
from rules.terminal import printable
from rules.tooling.cli import rules_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="canhgac-agent")
def main() -> None:
    """canhgac agent: collect security facts about this host, check them, ship them."""


main.add_command(rules_group, name="rules")
main.add_command(enroll)
main.add_command(config_group, name="config")
main.add_command(discover)


def _dump(document: object) -> str:
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
        config = load_config(config_path, app.environment())
        host = app.HostAccess()
        if no_state:
            document = app.collect_local(config, host, read_state=False)
        else:
            document = app.collect(config, state_dir, host)
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
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list the rules that pass, do not apply or are waived (counted otherwise).",
)
@lang_option
@config_option
def check(
    *,
    rule_paths: tuple[Path, ...],
    facts_path: Path | None,
    output_format: str,
    fail_on: str,
    show_all: bool,
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
    with agent_errors():
        config = load_config(config_path, app.environment())
    if facts_path is not None:
        with agent_errors():
            facts: app.FactsDocument = app.read_facts(facts_path, sys.stdin)
    else:
        with agent_errors():
            facts = app.collect_local(config, app.HostAccess())
    paths = app.rule_paths_for(config, rule_paths)
    try:
        outcome = app.check(paths, facts)
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(printable(problem), err=True)
        raise UsageFailure(f"{len(e.problems)} problem(s) in the rules") from e
    width = shutil.get_terminal_size((100, 24)).columns
    for note in outcome.notes:
        text = note_line(note.domain, note.kind, note.reason, lang, note.partial)
        for line in note_lines(text, width):
            click.echo(line, err=True)

    results = outcome.results
    fixes = remediations(outcome.ruleset, facts)
    if output_format == "json":
        click.echo(_dump(check_document(results, outcome.score, fixes, facts)), nl=False)
    else:
        command = check_command(facts_path, rule_paths, config_path, lang)
        layout = Layout(width=width, show_all=show_all, command=command)
        for line in format_report(results, fixes, lang, layout):
            click.echo(line)
        click.echo()
        for line in format_score(outcome.score, lang, width):
            click.echo(line)
    if fails_at_or_above(results, Severity(fail_on)):
        sys.exit(1)
    if errors_at_or_above(results, Severity(fail_on)):
        sys.exit(3)


@main.command()
@click.option("--once", is_flag=True, help="Collect and ship one report, then exit (cron, timers).")
@click.option(
    "--cycle",
    "cycle_mode",
    type=click.Choice([m.value for m in CycleMode]),
    default=CycleMode.PROCESS.value,
    show_default=True,
    help="Where the daemon runs each cycle: a child process (its memory freed when the"
    " cycle ends) or a thread.",
)
@click.option(
    "--interval",
    "interval_text",
    help="Time between collections, e.g. 15m, 5s (default: agent.interval, else 15m).",
)
@click.option(
    "--log-format",
    type=click.Choice([f.value for f in LogFormat]),
    default=LogFormat.TEXT.value,
    show_default=True,
    help="The daemon's log: one line per event, text or JSON.",
)
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
    cycle_mode: str,
    interval_text: str | None,
    log_format: str,
    server: str | None,
    token: str | None,
    token_file: Path | None,
    ca_file: Path | None,
    timeout: float,
    state_dir: Path | None,
    config_path: Path | None,
    lang: str,
) -> None:
    """Collect facts and ship them to the collector, every interval (or --once).

    Each report is first written to the spool in the state directory and removed
    once the collector has acknowledged it; reports kept during an outage are sent
    in order when the collector is back. SIGTERM stops the daemon, SIGHUP reloads
    the configuration.
    """
    interval: float | None = None
    if interval_text is not None:
        try:
            interval = parse_duration(interval_text)
        except ValueError as e:
            raise UsageFailure(f"--interval: {e}") from e
    shipping = app.Shipping(
        server=server, token=token, token_file=token_file, ca_file=ca_file, timeout=timeout
    )

    def load() -> Setup:
        config = load_config(config_path, app.environment())
        transport = app.open_transport(config, state_dir, shipping, app.environment())
        every = interval or config.interval_seconds
        spool = open_spool(config, state_dir, transport, every)
        return Setup(config, state_dir, spool, every)

    if once:
        with agent_errors():
            setup = load()
            shipped = collect_and_ship(setup.config, state_dir, setup.spool, app.HostAccess())
        _print_once(shipped, lang)
        return
    with agent_errors():
        log = EventLog(sys.stderr, LogFormat(log_format))
        clean = Daemon(load, log, lang, mode=CycleMode(cycle_mode)).run()
    if not clean:
        # Collector threads of an abandoned cycle would hold the interpreter's exit.
        sys.stderr.flush()
        os._exit(0)


def _print_once(shipped: Shipped, lang: str) -> None:
    """Receipts on stdout, spool events on stderr; exit 1 unless this run's report
    reached the collector (it then waits in the spool for the next run)."""
    if shipped.carry_error is not None:
        click.echo(printable(carry_error_line(shipped.carry_error, lang)), err=True)
    if shipped.spool_error is not None:
        click.echo(printable(spool_error_line(shipped.spool_error, lang)), err=True)
    if shipped.spooled is not None and shipped.spooled.dropped:
        click.echo(dropped_line(shipped.spooled.dropped, lang), err=True)
    failure = shipped.direct_error
    for attempt in shipped.drain.attempts:
        if attempt.delivery is not None:
            d = attempt.delivery
            click.echo(delivery_line(printable(d.report_id), d.status, d.score, d.failing, lang))
        elif attempt.outcome is Outcome.QUARANTINED:
            answer = attempt.error.detail if attempt.error is not None else attempt.reason
            click.echo(printable(quarantined_line(attempt.name, answer, lang)), err=True)
            failure = attempt.error or failure
        else:
            failure = attempt.error
    if shipped.direct is not None:
        d = shipped.direct
        click.echo(delivery_line(printable(d.report_id), d.status, d.score, d.failing, lang))
    if shipped.delivery is not None:
        return
    kept = kept_line(shipped.drain.pending, shipped.drain.retry_in, lang)
    if failure is None:
        raise click.ClickException(kept)
    if shipped.drain.pending:
        click.echo(kept, err=True)
    raise click.ClickException(printable(shipping_message(failure, lang)))
