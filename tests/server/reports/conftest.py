"""Fixtures of the renderer tests: the province audit of a fleet stored on a real
SQLite database through the ingest service (the model's own tests cover PostgreSQL)."""

from __future__ import annotations

import pytest

from server.read.audit import build_audit
from server.read.audit_views import AuditReport
from server.storage.database import Database
from tests.server.reports.fleet import BETWEEN, Fleet, audit_policy, server_policy


@pytest.fixture
def province(sqlite_database: Database, sqlite_url: str) -> AuditReport:
    policy = server_policy()
    fleet = Fleet(sqlite_database, policy, sqlite_url)
    fleet.first_period()
    with sqlite_database.session() as session:
        return build_audit(
            session, audit_policy(policy), as_of=BETWEEN, agency=None, stale_after_seconds=86400
        )
