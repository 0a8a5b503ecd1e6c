"""A throw-away PostgreSQL database per test, on the server named by CANHGAC_TEST_PG_URL.

`.ci/run` starts Debian's PostgreSQL and exports the URL; on a developer machine
without it the PostgreSQL half of the suite skips (under CI=true it fails: see
`tests.support.require`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support import require

PG_URL_ENV = "CANHGAC_TEST_PG_URL"


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
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
