"""Migrations: the migrated schema is exactly the models' schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.errors import DatabaseError
from server.storage.database import Database, open_database
from server.storage.migrate import current_revision, head_revision, require_head, upgrade
from server.storage.models import Base


def diff(database: Database, metadata: sa.MetaData) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_reaches_head(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() == "0009"
    upgrade(db_url)  # idempotent
    assert current_revision(db_url) == "0009"


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


def test_0002_gives_existing_hosts_stable_unique_labels(db_url: str) -> None:
    upgrade(db_url, "0001")
    database = open_database(db_url)
    try:
        with database.engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO agencies (id, name, created_at) VALUES ('a', 'a', :now)"),
                {"now": "2026-11-27 08:00:00+00"},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO agent_tokens (id, agency_id, name, secret_hash, created_at)"
                    " VALUES ('t', 'a', 't', :h, :now)"
                ),
                {"h": "0" * 64, "now": "2026-11-27 08:00:00+00"},
            )
            for index, agent in enumerate(["agent-aaaaaaaa-1", "agent-bbbbbbbb-2"]):
                connection.execute(
                    sa.text(
                        "INSERT INTO hosts (id, agent_id, agency_id, token_id, hostname,"
                        " agent_version, last_report_id, last_seq, last_collected_at,"
                        " last_received_at, passed_count, failed_count, error_count,"
                        " failing_critical, failing_high, failing_medium, failing_low,"
                        " failing_info) VALUES (:id, :agent, 'a', 't', 'web01', '0.1', 'r',"
                        " 1, :now, :now, 0, 0, 0, 0, 0, 0, 0, 0)"
                    ),
                    {"id": index + 1, "agent": agent, "now": "2026-11-27 08:00:00+00"},
                )
        upgrade(db_url)
        with database.engine.connect() as connection:
            labels = connection.execute(
                sa.text("SELECT agent_id, label FROM hosts ORDER BY id")
            ).all()
        assert [tuple(row) for row in labels] == [
            ("agent-aaaaaaaa-1", "web01"),
            ("agent-bbbbbbbb-2", "web01/agent-bb"),
        ]
    finally:
        database.dispose()


def test_concurrent_upgrades_migrate_once(db_url: str) -> None:
    """Replicas starting together (real processes): one migrates, the others wait."""
    code = "import sys; from server.storage.migrate import upgrade; upgrade(sys.argv[1])"
    root = str(Path(__file__).resolve().parents[3])
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url],
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": root},
        )
        for _ in range(4)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    assert current_revision(db_url) == head_revision()


def test_require_head(db_url: str) -> None:
    with pytest.raises(DatabaseError, match="db upgrade"):
        require_head(db_url)
    upgrade(db_url)
    require_head(db_url)
