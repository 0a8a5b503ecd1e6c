"""`canhgac-server audit`: write an audit package of one agency or of the province.

Thin: parse, read the outline from the database (`server.read.audit`), write the
document as its findings and hosts are read (`server.reports.render.stream_audit`)
into a temporary file renamed into place, so a failure never leaves half a document
at `--output` and a province's document is never held in memory whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import click

from rules.errors import RuleLoadError
from server.cli.common import CONTEXT, UsageFailure, with_config
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.read.audit import AuditPolicy, audit_outline
from server.reports.render import FIRST_DAY, LAST_DAY, Format, cut_off, stream_audit
from server.reports.tabular import Table
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
    "--table",
    type=click.Choice([table.value for table in Table]),
    help="CSV only: the table to write (default findings; the XLSX holds all four).",
)
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
    table: str | None,
    output: Path,
) -> None:
    """Write the audit package (html, pdf, csv, xlsx, json) of an agency or of all."""
    if province == (agency is not None):
        raise UsageFailure("give exactly one of --agency ID or --all")
    if table is not None and fmt != Format.CSV.value:
        raise UsageFailure("--table applies to --format csv only")
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
            outline, detail = audit_outline(
                session,
                policy,
                as_of=cutoff,
                agency=agency,
                stale_after_seconds=int(config.stale_after_seconds),
                previous_as_of=earlier,
            )
            # Written while the session reads the findings and hosts a page at a time.
            chunks = stream_audit(
                outline, Format(fmt), Lang(lang), detail, table=Table(table or Table.FINDINGS)
            )
            try:
                size = _write_atomically(output, chunks)
            except OSError as e:
                raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from e
    finally:
        database.dispose()
    click.echo(f"{output} ({size} bytes)")


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> int:
    """Write `chunks` to a temporary file beside `path`, then rename it into place;
    the bytes written."""
    directory = path.resolve().parent
    handle, temporary = tempfile.mkstemp(prefix=".audit-", dir=directory)
    size = 0
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
                size += len(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return size
