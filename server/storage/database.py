"""Opening the database: engine, SQLite settings and the two kinds of session.

SQLite is the embedded default; PostgreSQL is the scale-out path (several replicas on
one database). Everything here stays portable; SQLite-only tuning is applied in
connection events so the rest of the code never branches on the dialect.

This is also the one place where SQLAlchemy's exceptions become the server's:
`session()`, `write()` and `ping()` raise `DatabaseError` (from the original), so
callers above storage handle one exception type and never import `sqlalchemy.exc`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.errors import ConstraintViolation, DatabaseError

# Execution option that selects how a SQLite transaction starts (see `_on_begin`).
_BEGIN_OPTION = "canhgac_sqlite_begin"
_BEGIN_STATEMENTS = {"deferred": "BEGIN DEFERRED", "immediate": "BEGIN IMMEDIATE"}
SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Database:
    """An engine and its session factories; the storage layer's one dependency."""

    engine: Engine
    _reader: sessionmaker[Session]
    _writer: sessionmaker[Session]
    # SQLite only: writers of this process queue here, in order, instead of in
    # SQLite's busy handler, whose growing sleeps (up to 100 ms) made a long tail.
    _write_lock: threading.RLock | None = None

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reading (a deferred transaction on SQLite), closed at the end
        of the block; a database failure inside it is a `DatabaseError`."""
        with database_errors("database read failed"), self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on error.

        On SQLite it starts with BEGIN IMMEDIATE: it takes the write lock up front, so
        two concurrent writers queue on busy_timeout instead of one failing with
        SQLITE_BUSY when it upgrades a read snapshot that the other changed.
        A database failure inside the block or at commit is a `DatabaseError` (a disk
        full, a lost connection...); a broken constraint is its `ConstraintViolation`.
        """
        with database_errors("database write failed"):
            if self._write_lock is None:
                with self._writer.begin() as session:
                    yield session
                return
            with self._write_lock, self._writer.begin() as session:
                yield session

    def ping(self) -> None:
        """`SELECT 1`; raises DatabaseError when the database cannot answer."""
        with (
            database_errors(f"database {self.url} is unavailable"),
            self.engine.connect() as connection,
        ):
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def database_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy's exceptions raised in the block into `DatabaseError(action: ...)`,
    raised from the original; a broken constraint (`IntegrityError`) becomes its
    subclass `ConstraintViolation`, so the ingest can tell a report stored meanwhile
    by another replica from a real failure without knowing SQLAlchemy."""
    try:
        yield
    except IntegrityError as e:
        raise ConstraintViolation(f"{action}: {e}") from e
    except SQLAlchemyError as e:
        raise DatabaseError(f"{action}: {e}") from e


def add_unless_present(session: Session, row: object) -> bool:
    """Insert `row` in a savepoint; False when a unique constraint says another writer
    (another replica) inserted it first, which leaves the transaction usable."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def open_database(url: str) -> Database:
    """Create the engine for `url` (checking a SQLite file's directory first)."""
    engine = make_engine(url)
    writer_engine = engine.execution_options(**{_BEGIN_OPTION: "immediate"})
    return Database(
        engine=engine,
        _reader=sessionmaker(engine, expire_on_commit=False),
        _writer=sessionmaker(writer_engine, expire_on_commit=False),
        _write_lock=threading.RLock() if engine.dialect.name == "sqlite" else None,
    )


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a non-numeric port raises only when read
    except (ArgumentError, ValueError) as e:
        # Not the URL itself: it may carry a password.
        raise DatabaseError(f"invalid database URL: {str(e).splitlines()[0]}") from e
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        _check_sqlite_path(parsed.database)
    try:
        # JSON columns keep Vietnamese as UTF-8 (3 bytes a letter), not as \u escapes (6).
        engine = create_engine(parsed, json_serializer=_json_text)
    except (NoSuchModuleError, ImportError) as e:
        raise DatabaseError(f"no driver for database URL {parsed.drivername!r}: {e}") from e
    if is_sqlite:
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_begin)
    return engine


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_sqlite_path(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        # In-memory databases exist only per connection: useless for a collector.
        raise DatabaseError("a SQLite database must be a file (sqlite:///path/to/canhgac.db)")
    directory = Path(database).parent
    if not directory.is_dir():
        raise DatabaseError(
            f"data directory {directory} does not exist: create it (owned by the collector's"
            " user), set server.data_dir, or pass --db"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        # WAL mode creates -wal and -shm files beside the database.
        raise DatabaseError(f"data directory {directory} is not writable by this user")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module opens transactions implicitly and not before DDL; turn that
    # off and let `_on_begin` emit BEGIN, so every transaction (DDL included) is ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers (metrics refresh, health checks) never block the writer.
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not WAL's usual NORMAL: a report is acknowledged only after its commit
        # and the agent then drops it from its spool, so a commit must survive a power
        # loss; NORMAL could lose the last transactions that were acknowledged.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
    finally:
        cursor.close()


def _on_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "deferred")
    connection.exec_driver_sql(_BEGIN_STATEMENTS[mode])
