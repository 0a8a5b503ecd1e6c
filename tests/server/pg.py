"""A throw-away PostgreSQL database per test, on the server named by CANHGAC_TEST_PG_URL.

`.ci/run` starts Debian's PostgreSQL and exports the URL; on a developer machine
without it the PostgreSQL half of the suite skips (under CI=true it fails: see
`tests.support.require`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from tests.support import require

PG_URL_ENV = "CANHGAC_TEST_PG_URL"
INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE
DROP_ATTEMPTS = 50


def pg_base_url() -> str:
    url = os.environ.get(PG_URL_ENV, "")
    require(bool(url), f"{PG_URL_ENV} is not set (a PostgreSQL URL whose role may CREATE DATABASE)")
    return url


@contextmanager
def temporary_pg_database(base_url: str) -> Iterator[str]:
    """Create a fresh database next to `base_url`'s; yield its URL; drop it afterwards."""
    base = make_url(base_url)
    name = f"canhgac_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _drop(admin, name)
        finally:
            admin.dispose()


def _drop(admin: Engine, name: str) -> None:
    """DROP ... WITH (FORCE), again while a backend this role may not terminate is in it.

    Autovacuum visits fresh databases, more so when two test runs load the server; its
    workers are not this role's to terminate (InsufficientPrivilege), and they leave
    within moments.
    """
    for attempt in range(1, DROP_ATTEMPTS + 1):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as e:
            if getattr(e.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE or (
                attempt == DROP_ATTEMPTS
            ):
                raise
            time.sleep(0.2)


# Imported by the conftests of tests/server and tests/e2e: every test taking `db_url`
# runs on both databases.
@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'canhgac.db'}"
        return
    with temporary_pg_database(pg_base_url()) as url:
        yield url
