"""Migrations: the migrated schema is exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.db import Database, open_database
from server.migrate import current_revision, head_revision, upgrade
from server.models import Base


def diff(database: Database, metadata: sa.MetaData) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_reaches_head(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() == "0001"
    upgrade(db_url)  # idempotent
    assert current_revision(db_url) == "0001"


def test_migrated_schema_matches_the_models(database: Database) -> None:
    assert diff(database, Base.metadata) == []


def test_the_comparison_would_see_a_difference(database: Database) -> None:
    """Guard for the test above: a model change without a migration shows up."""
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["hosts"].append_column(sa.Column("extra", sa.Integer()))
    assert any("extra" in str(change) for change in diff(database, changed))


def test_tables(database: Database) -> None:
    names = set(sa.inspect(database.engine).get_table_names())
    assert names >= {"agencies", "agent_tokens", "hosts", "reports", "rule_results", "findings"}


def test_findings_are_unique_per_host_rule_item(database: Database) -> None:
    uniques = sa.inspect(database.engine).get_unique_constraints("findings")
    assert [u["column_names"] for u in uniques] == [["host_id", "rule_id", "item_key"]]


def test_migration_works_from_any_directory(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    upgrade(db_url)
    database = open_database(db_url)
    try:
        assert diff(database, Base.metadata) == []
    finally:
        database.dispose()
