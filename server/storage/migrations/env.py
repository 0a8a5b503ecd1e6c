"""Alembic environment for the collector, driven from `server.storage.migrate` (no alembic.ini).

`server.storage.migrate` passes the database URL (or an open connection) in
`config.attributes`, not in the ini options: a password containing `%` would break
ConfigParser interpolation.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from server.storage.database import make_engine
from server.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.attributes["db_url"],
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = make_engine(config.attributes["db_url"])
    try:
        with engine.connect() as new_connection:
            _configure_and_run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
