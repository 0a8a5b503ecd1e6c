"""`canhgac-server audit`: write an audit package of one agency or of the province.

Thin: parse, build the model from the database (`server.read.audit`), render
(`server.reports`), and write the file atomically (a temporary file renamed into
place), so a failure never leaves half a document at `--output`.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from pathlib import Path

import click

from rules.errors import RuleLoadError
from server.cli.common import CONTEXT, UsageFailure, with_config
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.read.audit import AuditPolicy, build_audit
from server.reports.render import FIRST_DAY, LAST_DAY, Format, cut_off, render_audit
from server.reports.text import Lang
from server.storage.database import open_database


@click.command(context_settings=CONTEXT)
@with_config
@click.option("--agency", "agency", metavar="ID", help="The agency to audit.")
@click.option("--all", "province", is_flag=True, help="Every agency: the province report.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Audit the data as of the end of this day (UTC), YYYY-MM-DD; default: now.",
)
@click.option(
    "--previous",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The earlier period the change is measured from (default: one year before).",
)
@click.option("--format", "fmt", type=click.Choice([f.value for f in Format]), required=True)
@click.option("--lang", type=click.Choice([lang.value for lang in Lang]), default="vi")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write.",
)
def audit(
    *,
    config: ServerConfig,
    agency: str | None,
    province: bool,
    as_of: datetime | None,
    previous: datetime | None,
    fmt: str,
    lang: str,
    output: Path,
) -> None:
    """Write the audit package (html, pdf, csv, xlsx, json) of an agency or of all."""
    if province == (agency is not None):
        raise UsageFailure("give exactly one of --agency ID or --all")
    try:
        loaded = load_server_policy(config)
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise UsageFailure(f"{len(e.problems)} problem(s) in the policy files") from e
    policy = AuditPolicy.of(loaded.policy, loaded.fingerprint, loaded.weights, loaded.vulns)
    for name, value in (("--as-of", as_of), ("--previous", previous)):
        if value is not None and not FIRST_DAY <= value.date() <= LAST_DAY:
            raise UsageFailure(f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    cutoff = cut_off(_day(as_of), utc_now())
    earlier = cut_off(_day(previous), utc_now()) if previous is not None else None
    if earlier is not None and earlier >= cutoff:
        raise UsageFailure("--previous must be a day before --as-of")
    database = open_database(config.database_url)
    try:
        with database.session() as session:
            report = build_audit(
                session,
                policy,
                as_of=cutoff,
                agency=agency,
                stale_after_seconds=int(config.stale_after_seconds),
                previous_as_of=earlier,
            )
    finally:
        database.dispose()
    data = render_audit(report, Format(fmt), Lang(lang))
    try:
        _write_atomically(output, data)
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from e
    click.echo(f"{output} ({len(data)} bytes)")


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _write_atomically(path: Path, data: bytes) -> None:
    directory = path.resolve().parent
    handle, temporary = tempfile.mkstemp(prefix=".audit-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
