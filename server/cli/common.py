"""Helpers shared by the `canhgac-server` command modules: config, database, output."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from rules.terminal import printable
from server.config import ServerConfig, load_config
from server.errors import ConfigError, InvalidArgumentError, ServerError
from server.storage import migrate
from server.storage.database import Database, open_database

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"]}


class UsageFailure(click.ClickException):
    """A usage problem told in one line (no usage text): exit code 2, like click's own."""

    exit_code = 2


def with_config(command: F) -> F:
    """Add `--config` and `--db`; call the command with the merged `config=`.

    Also turns collector errors into one-line messages instead of tracebacks: an
    invalid argument or any problem of the configuration (unreadable file, invalid
    YAML, unknown key, bad value) is a usage error (exit 2), anything else exits 1.
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
        except ConfigError as e:
            # Unreadable, not YAML, or an unknown key or bad value: the configuration
            # is the user's input, so a usage error (exit 2), as in the agent.
            raise UsageFailure(one_line(str(e))) from e
        try:
            return command(*args, config=config, **kwargs)
        except InvalidArgumentError as e:
            raise click.UsageError(str(e)) from e
        except ServerError as e:
            raise click.ClickException(one_line(str(e))) from e

    return wrapper  # type: ignore[return-value]


def one_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else message


@contextmanager
def migrated(config: ServerConfig) -> Iterator[Database]:
    """The database, migrated to head (admin commands work on a fresh install)."""
    database = open_database(config.database_url)
    try:
        migrate.upgrade(config.database_url)
        yield database
    finally:
        database.dispose()


def time_text(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    # Cells hold names from the database (a token's name is an agent's hostname):
    # escaped, so none can move the cursor, colour the screen or fake a row.
    safe = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in safe) for i in range(len(header))]
    for row in safe:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
