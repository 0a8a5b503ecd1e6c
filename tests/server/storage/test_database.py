"""The database layer: SQLite settings, clear errors, UTC datetimes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError

from server.errors import ConstraintViolation, DatabaseError
from server.storage.database import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    add_unless_present,
    open_database,
)
from server.storage.models import Agency, AgentToken


def pragma(database: Database, name: str) -> object:
    with database.engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_settings(sqlite_database: Database) -> None:
    database = sqlite_database
    assert pragma(database, "journal_mode") == "wal"
    assert pragma(database, "synchronous") == 2  # FULL: an acknowledged report survives power loss
    assert pragma(database, "foreign_keys") == 1
    assert pragma(database, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS


def test_write_transactions_take_the_write_lock_at_begin(sqlite_database: Database) -> None:
    database = sqlite_database
    """BEGIN IMMEDIATE: before writing anything, a write session already excludes writers."""
    path = database.engine.url.database
    assert path is not None
    with database.write() as session:
        session.connection()  # BEGIN, nothing written yet
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    with database.session() as session:
        session.connection()  # a read session does not lock writers out
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(ConstraintViolation) as caught, database.write() as session:
        session.add(
            AgentToken(
                id="t",
                agency_id="no-such-agency",
                name="t",
                secret_hash="0" * 64,
                created_at=datetime.now(UTC),
            )
        )
    # The storage layer's own exception, with SQLAlchemy's as its cause.
    assert isinstance(caught.value.__cause__, IntegrityError)


def test_datetimes_come_back_aware_utc(database: Database) -> None:
    plus7 = timezone(timedelta(hours=7))
    created = datetime(2026, 11, 27, 15, 0, 0, 123456, tzinfo=plus7)
    with database.write() as session:
        session.add(Agency(id="a", name="a", created_at=created))
    with database.session() as session:
        stored = session.get(Agency, "a")
        assert stored is not None
        assert stored.created_at == created
        assert stored.created_at.tzinfo is UTC
        assert stored.created_at.hour == 8


def test_naive_datetimes_are_refused(database: Database) -> None:
    with (
        pytest.raises(DatabaseError, match="naive datetime") as caught,
        database.write() as session,
    ):
        session.add(Agency(id="a", name="a", created_at=datetime(2026, 1, 1)))
    assert isinstance(caught.value.__cause__, StatementError)


def test_failures_in_a_read_session_are_database_errors(database: Database) -> None:
    """The one translation: callers above storage never see sqlalchemy.exc."""
    with (
        pytest.raises(DatabaseError, match="database read failed") as caught,
        database.session() as session,
    ):
        session.execute(text("SELECT * FROM no_such_table"))
    assert isinstance(caught.value.__cause__, SQLAlchemyError)


def test_failures_in_a_write_are_database_errors_and_roll_back(database: Database) -> None:
    with (
        pytest.raises(DatabaseError, match="database write failed") as caught,
        database.write() as session,
    ):
        session.add(Agency(id="a", name="a", created_at=datetime.now(UTC)))
        session.flush()
        session.execute(text("SELECT * FROM no_such_table"))
    assert isinstance(caught.value.__cause__, SQLAlchemyError)
    with database.session() as session:
        assert session.get(Agency, "a") is None


def test_a_broken_constraint_is_a_constraint_violation(database: Database) -> None:
    """The ingest tells a report stored meanwhile by another replica from a failure by
    this subclass of DatabaseError, without knowing SQLAlchemy."""
    with database.write() as session:
        session.add(Agency(id="a", name="a", created_at=datetime.now(UTC)))
    with (
        pytest.raises(ConstraintViolation, match="database write failed") as caught,
        database.write() as session,
    ):
        session.add(Agency(id="a", name="again", created_at=datetime.now(UTC)))
    assert isinstance(caught.value, DatabaseError)
    assert isinstance(caught.value.__cause__, IntegrityError)


def test_add_unless_present_keeps_the_transaction_usable(database: Database) -> None:
    with database.write() as session:
        assert add_unless_present(session, Agency(id="a", name="a", created_at=datetime.now(UTC)))
    with database.write() as session:
        again = Agency(id="a", name="again", created_at=datetime.now(UTC))
        assert not add_unless_present(session, again)
        session.add(Agency(id="b", name="b", created_at=datetime.now(UTC)))
    with database.session() as session:
        assert session.get(Agency, "a").name == "a"  # type: ignore[union-attr]
        assert session.get(Agency, "b") is not None


def test_ping(database: Database) -> None:
    database.ping()


def test_missing_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"data directory .*absent does not exist"):
        open_database(f"sqlite:///{tmp_path / 'absent' / 'canhgac.db'}")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(DatabaseError, match="must be a file"):
        open_database(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "invalid database URL"), ("nosuchdb://x/y", "no driver")],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        open_database(url)


def test_unavailable_database_fails_ping(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database" * 100)
    database = open_database(f"sqlite:///{path}")
    with pytest.raises(DatabaseError, match="unavailable"):
        database.ping()
