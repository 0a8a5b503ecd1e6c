"""Schema migrations, driven in code: `upgrade(db_url)` brings a database to head.

No alembic.ini on disk: the Alembic config is built here with script_location inside
the installed package, so `canhgac-server db upgrade` works from any directory.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from server.db import make_engine
from server.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(db_url: str) -> Config:
    config = Config()
    # ConfigParser interpolates `%`; the URL travels in `attributes` for that reason.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["db_url"] = db_url
    return config


def upgrade(db_url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision`; safe to run when already there."""
    try:
        command.upgrade(alembic_config(db_url), revision)
    except (CommandError, SQLAlchemyError) as e:
        raise DatabaseError(f"cannot migrate the database: {e}") from e


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
        raise DatabaseError(f"cannot read the schema revision: {e}") from e
    finally:
        engine.dispose()
