"""Revision 0005 on a populated 0004 database, on SQLite and PostgreSQL: rows written
as text before stay readable as they were, new rows are compressed, Vietnamese is
stored as UTF-8, and downgrade gives the text back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from server.storage.compressed import MARKER
from server.storage.database import open_database
from server.storage.fact_store import load_facts
from server.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from server.storage.models import FactsBlob, Report, RuleResultRow
from tests.server.storage.revision_rows import AGENCY_AND_TOKEN, host_row

NOW = "2026-11-27 08:00:00+00"
PACKAGES = {"manager": "dpkg", "count": 1, "items": [{"name": "bash", "version": "5.2"}] * 40}
ITEMS = [{"key": "k", "evidence": {"port": 23}, "message": {"vi": "Dịch vụ telnet", "en": "x"}}]


def populate_0004(db_url: str) -> None:
    """One host, one report, one blob and one result, as revision 0004's code wrote
    them (text JSON, `\\u` escapes included)."""
    engine = sa.create_engine(db_url)
    rows = [
        *AGENCY_AND_TOKEN,
        host_row("r-1", 1, "0, 1, 0, 1, 0, 0, 0, 0", 1),
        "INSERT INTO reports (id, report_id, host_id, seq, collected_at, received_at,"
        " agent_version, facts, domains, applied, evaluated) VALUES (1, 'r-1', 1, 1, :now,"
        " :now, '0.1', :envelope, :domains, true, true)",
        "INSERT INTO facts_blobs (id, host_id, domain, content_hash, content, first_seen_at)"
        " VALUES (7, 1, 'packages', :hash, :content, :now)",
        "INSERT INTO rule_results (report_pk, rule_id, severity, status, items, errors)"
        " VALUES (1, 'TEST-TELNET', 'critical', 'fail', :items, '[]')",
    ]
    values = {
        "now": NOW,
        "hash": "0" * 64,
        "envelope": json.dumps({"schema": "canhgac.facts/v1", "collected_at": NOW}),
        "domains": json.dumps({"packages": 7}),
        "content": json.dumps(PACKAGES, sort_keys=True, separators=(",", ":")),
        "items": json.dumps(ITEMS),  # ensure_ascii: "D\u1ecbch v\u1ee5"
    }
    with engine.begin() as connection:
        for statement in rows:
            connection.execute(sa.text(statement), values)
    engine.dispose()


def test_populated_0004_upgrades_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0004")
    populate_0004(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    database = open_database(db_url)
    try:
        with database.session() as session:
            report = session.get(Report, 1)
            assert report is not None
            assert load_facts(session, report)["packages"] == PACKAGES
            assert session.scalars(select(RuleResultRow.items)).one() == ITEMS
        big = {"manager": "dpkg", "count": 2, "items": [{"name": "bash"}] * 200}
        with database.write() as session:
            session.add(
                FactsBlob(
                    id=8,
                    host_id=1,
                    domain="packages",
                    content_hash="1" * 64,
                    content=json.dumps(big),
                    first_seen_at=datetime.now(UTC) - timedelta(days=1),
                )
            )
            session.add(
                RuleResultRow(
                    report_pk=1,
                    rule_id="R-2",
                    severity="low",
                    status="fail",
                    items=ITEMS * 20,
                    errors=["Lỗi"],
                )
            )
        with database.engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT content FROM facts_blobs WHERE id = 8"))
            raw = bytes(stored.scalar_one())
            items = connection.execute(
                sa.text("SELECT items FROM rule_results WHERE rule_id = 'R-2'")
            ).scalar_one()
            errors = connection.execute(
                sa.text("SELECT errors FROM rule_results WHERE rule_id = 'R-2'")
            ).scalar_one()
        assert raw.startswith(MARKER)
        assert len(raw) < len(json.dumps(big)) / 10  # compressed
        assert bytes(items).startswith(MARKER)
        text = errors if isinstance(errors, str) else json.dumps(errors, ensure_ascii=False)
        assert "Lỗi" in text and "\\u" not in text  # UTF-8, not escapes
        with database.session() as session:
            blob = session.get(FactsBlob, 8)
            assert blob is not None
            assert json.loads(blob.content) == big
            r2 = session.scalars(select(RuleResultRow).where(RuleResultRow.rule_id == "R-2")).one()
            assert r2.items == ITEMS * 20
    finally:
        database.dispose()

    command.downgrade(alembic_config(db_url), "0004")
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            contents: dict[int, str] = dict(
                connection.execute(sa.text("SELECT id, content FROM facts_blobs")).all()
            )
            items = connection.execute(
                sa.text("SELECT items FROM rule_results WHERE rule_id = 'R-2'")
            ).scalar_one()
        assert json.loads(contents[7]) == PACKAGES
        assert json.loads(contents[8]) == big
        assert (json.loads(items) if isinstance(items, str) else items) == ITEMS * 20
    finally:
        engine.dispose()
