"""`canhgac-server`: the collector's command line (thin: parse, call, print).

Every subcommand takes `--config FILE` (its `server:` section) and `--db URL`; flags
win over the file. Errors of the collector are printed as one clear line, exit 1;
usage errors and invalid rule files exit 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from rules.cli import rules_group
from rules.errors import RuleLoadError
from rules.loader import load_rules
from rules.model import RuleSet
from server import migrate
from server.clock import utc_now
from server.config import ServerConfig, is_loopback, load_config, parse_listen
from server.db import open_database
from server.errors import ServerError
from server.tokens import create_token, list_tokens, revoke_token

F = TypeVar("F", bound=Callable[..., Any])


def with_config(command: F) -> F:
    """Add `--config` and `--db`; call the command with the merged `config=`.

    Also turns collector errors into one-line messages instead of tracebacks.
    """

    @click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="YAML configuration file (its `server:` section).",
    )
    @click.option(
        "--db",
        "db_url",
        envvar="CANHGAC_DB_URL",
        help="Database URL (default: SQLite in the data directory). Env: CANHGAC_DB_URL.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, config_file: Path | None, db_url: str | None, **kwargs: Any) -> Any:
        try:
            config = load_config(config_file).with_overrides(db_url=db_url)
            return command(*args, config=config, **kwargs)
        except ServerError as e:
            raise click.ClickException(str(e)) from e

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="canhgac")
def main() -> None:
    """canhgac collector: receives agents' reports, keeps findings, serves metrics."""


main.add_command(rules_group, name="rules")


@main.command()
@with_config
@click.option("--listen", help="HOST:PORT to listen on (default 127.0.0.1:8450).")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory (repeatable; default: the built-in packs).",
)
@click.option(
    "--allow-plain-http",
    is_flag=True,
    help="Allow a non-loopback listen address without TLS.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def serve(
    config: ServerConfig,
    listen: str | None,
    rule_paths: tuple[Path, ...],
    allow_plain_http: bool,
    log_level: str,
) -> None:
    """Run the collector: migrate the database, load the rules, serve HTTP."""
    config = config.with_overrides(listen=listen, rules=rule_paths or None)
    host, port = parse_listen(config.listen)
    if not is_loopback(host) and not allow_plain_http:
        # Tokens and facts would cross the network in clear text; TLS is a later issue.
        raise click.UsageError(
            f"refusing to serve plain HTTP on non-loopback address {host}; put a TLS proxy"
            " in front and pass --allow-plain-http"
        )
    ruleset = load_ruleset(config)
    database = open_database(config.database_url)
    migrate.upgrade(config.database_url)
    import uvicorn  # heavy; only `serve` needs it

    from server.api import create_app

    app = create_app(config, database, ruleset)
    click.echo(
        f"canhgac collector: {len(ruleset.rules)} rules, database {database.url},"
        f" listening on http://{config.listen}",
        err=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
    finally:
        database.dispose()


def load_ruleset(config: ServerConfig) -> RuleSet:
    """Load the configured rules; on problems print each as file:line:col and exit 2."""
    try:
        return load_rules(list(config.rule_paths()))
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(e.problems)} problem(s) in the rule files; not starting", err=True)
        sys.exit(2)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@with_config
def db_upgrade(config: ServerConfig) -> None:
    """Migrate the database schema to the newest revision."""
    open_database(config.database_url).dispose()  # clear errors for a bad path or URL
    migrate.upgrade(config.database_url)
    revision = migrate.current_revision(config.database_url)
    click.echo(f"database is at revision {revision}")


@main.group()
def token() -> None:
    """Agent tokens."""


@token.command("create")
@with_config
@click.option("--agency", "agency_id", required=True, help="Agency id (created when absent).")
@click.option("--name", help="A label for the token (for example the server's name).")
def token_create(config: ServerConfig, agency_id: str, name: str | None) -> None:
    """Create a token and print it (only this once)."""
    database = _migrated(config)
    try:
        with database.write() as session:
            info, plain = create_token(session, agency_id, name, utc_now)
    finally:
        database.dispose()
    click.echo(plain)
    click.echo(
        f"token {info.token_id} for agency {info.agency_id} created; it is shown only once,"
        " store it now",
        err=True,
    )


@token.command("list")
@with_config
@click.option("--agency", "agency_id", help="Only this agency's tokens.")
def token_list(config: ServerConfig, agency_id: str | None) -> None:
    """List tokens (never their secrets)."""
    database = _migrated(config)
    try:
        with database.session() as session:
            tokens = list_tokens(session, agency_id)
    finally:
        database.dispose()
    rows = [
        (
            t.token_id,
            t.agency_id,
            t.name,
            t.agent_id or "-",
            _time(t.created_at),
            _time(t.last_used_at),
            "revoked " + _time(t.revoked_at) if t.revoked_at else "active",
        )
        for t in tokens
    ]
    header = ("TOKEN ID", "AGENCY", "NAME", "AGENT", "CREATED", "LAST USED", "STATE")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


@token.command("revoke")
@with_config
@click.argument("token_id")
def token_revoke(config: ServerConfig, token_id: str) -> None:
    """Revoke a token: its agent's reports are refused from now on."""
    database = _migrated(config)
    try:
        with database.write() as session:
            info = revoke_token(session, token_id, utc_now)
    finally:
        database.dispose()
    if info is None:
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"token {info.token_id} revoked")


def _migrated(config: ServerConfig) -> Any:
    database = open_database(config.database_url)
    migrate.upgrade(config.database_url)
    return database


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"
