"""Fixtures of the audit tests: a fleet on the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from server.evaluation.loaded_policy import ServerPolicy
from server.read.audit import AuditPolicy
from server.storage.database import Database
from tests.server.reports.fleet import Fleet, audit_policy, server_policy


@pytest.fixture(scope="session")
def fleet_policy() -> ServerPolicy:
    return server_policy()


@pytest.fixture
def audit_rules(fleet_policy: ServerPolicy) -> AuditPolicy:
    return audit_policy(fleet_policy)


@pytest.fixture
def fleet(database: Database, fleet_policy: ServerPolicy, db_url: str) -> Fleet:
    built = Fleet(database, fleet_policy, db_url)
    built.first_period()
    return built
