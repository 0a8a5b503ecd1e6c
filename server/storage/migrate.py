"""Schema migrations, driven in code: `upgrade(db_url)` brings a database to head.

No alembic.ini on disk: the Alembic config is built here with script_location inside
the installed package, so `canhgac-server db upgrade` works from any directory.

Several replicas may start at once against one PostgreSQL database: the upgrade runs
under a session-level advisory lock, so one replica migrates and the others wait,
then find the schema at head and do nothing. (Deployments that prefer an explicit
step run `canhgac-server db upgrade` once and `serve --no-migrate` everywhere.)
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from server.errors import DatabaseError
from server.storage.database import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number, the same in every replica: "canhgac migrate" in ASCII.
MIGRATION_LOCK_KEY = 0x63616E6867616D69


def alembic_config(db_url: str) -> Config:
    config = Config()
    # ConfigParser interpolates `%`; the URL travels in `attributes` for that reason.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["db_url"] = db_url
    return config


def upgrade(db_url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision`; safe to run when already there, and
    safe to run from several processes at once (PostgreSQL advisory lock; on SQLite
    an flock on a file beside the database)."""
    engine = make_engine(db_url)
    try:
        with _sqlite_file_lock(engine.url.database if engine.dialect.name == "sqlite" else None):
            _upgrade(engine, db_url, revision)
    except (CommandError, SQLAlchemyError) as e:
        raise DatabaseError(f"cannot migrate the database: {_first_line(e)}") from e
    finally:
        engine.dispose()


@contextmanager
def _sqlite_file_lock(database: str | None) -> Iterator[None]:
    if database is None:
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(engine: Engine, db_url: str, revision: str) -> None:
    with engine.connect() as connection:
        locked = connection.dialect.name == "postgresql"
        if locked:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _signed_key()})
            connection.commit()
        try:
            config = alembic_config(db_url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
        finally:
            if locked:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _signed_key()})
                connection.commit()


def _signed_key() -> int:
    # pg_advisory_lock takes a signed bigint.
    return MIGRATION_LOCK_KEY - (1 << 64) if MIGRATION_LOCK_KEY >= 1 << 63 else MIGRATION_LOCK_KEY


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise DatabaseError("no migrations found")
    return head


def current_revision(db_url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot read the schema revision: {_first_line(e)}") from e
    finally:
        engine.dispose()


def require_head(db_url: str) -> None:
    """For `serve --no-migrate`: refuse to serve a database that is not at head."""
    current, head = current_revision(db_url), head_revision()
    if current != head:
        raise DatabaseError(
            f"the database is at revision {current or 'none'}, this collector needs {head}:"
            " run `canhgac-server db upgrade` first"
        )
