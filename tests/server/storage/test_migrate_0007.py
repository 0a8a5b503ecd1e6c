"""Revision 0007 on a populated 0006 database, on SQLite and PostgreSQL: a packages
blob stored whole still loads; the next change is stored in parts; downgrade joins
every head's parts back into its content and deletes the parts."""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from server.storage.database import open_database
from server.storage.fact_parts import canonical, part_domain
from server.storage.fact_store import load_facts, split_facts, store_domains
from server.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from server.storage.models import FactsBlob, Host, Report
from tests.server.storage.revision_rows import AGENCY_AND_TOKEN, host_row
from tests.server.storage.test_fact_parts import DOCUMENTS

NOW = "2026-11-27 08:00:00+00"
# A list domain (parted at the top) long enough to be stored in parts.
LISTENING = [{"port": 1000 + i, "protocol": "tcp", "address": "0.0.0.0"} for i in range(100)]
# The whole envelope, as every revision before 0007 stored it.
ENVELOPE = {
    "schema": "canhgac.facts/v1",
    "report_id": "r-1",
    "agent_id": "agent-1",
    "seq": 1,
    "collected_at": "2026-11-27T08:00:00Z",
    "agent_version": "0.1",
    "errors": [],
}


def packages() -> dict[str, object]:
    value: dict[str, object] = json.loads(DOCUMENTS[0].read_text())["packages"]
    return value


def populate_0006(db_url: str) -> None:
    """One host, one report whose packages blob is whole (compressed, as 0005+ wrote)."""
    content = b"\x00" + zlib.compress(canonical(packages()).encode())
    statements = [
        *AGENCY_AND_TOKEN,
        host_row("r-1", 1, "0, 0, 0, 0, 0, 0, 0, 0", None),
        # No explicit id: PostgreSQL's sequence must hand out the next ones.
        "INSERT INTO facts_blobs (host_id, domain, content_hash, content, first_seen_at)"
        " VALUES (1, 'packages', 'whole', :content, :now)",
        "INSERT INTO reports (id, report_id, host_id, seq, collected_at, received_at,"
        " agent_version, facts, domains, applied, evaluated) VALUES (1, 'r-1', 1, 1, :now,"
        " :now, '0.1', :envelope, :domains, true, false)",
    ]
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        values: dict[str, object] = {
            "now": NOW,
            "hash": "0" * 64,
            "content": content,
            "envelope": json.dumps(ENVELOPE),
        }
        for statement in statements:
            if statement.startswith("INSERT INTO reports"):
                blob_id = connection.execute(sa.text("SELECT id FROM facts_blobs")).scalar_one()
                values["domains"] = json.dumps({"packages": blob_id})
            connection.execute(sa.text(statement), values)
    engine.dispose()


def test_populated_0006_upgrades_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0006")
    populate_0006(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()  # 0007, and every later one
    changed = packages()
    changed["items"][5]["version"] = "9.9-changed"  # type: ignore[index]
    database = open_database(db_url)
    try:
        with database.write() as session:
            report = session.get(Report, 1)
            assert report is not None
            assert load_facts(session, report) == {**ENVELOPE, "packages": packages()}
            host = session.get(Host, 1)
            assert host is not None
            now = datetime.now(UTC)
            split = split_facts({"seq": 2, "packages": changed, "listening": LISTENING})
            ids = store_domains(session, host, split, current=True, now=now)
            session.add(
                Report(
                    id=2,
                    report_id=str(uuid.uuid4()),
                    host_id=1,
                    seq=2,
                    collected_at=now,
                    received_at=now,
                    agent_version="0.1",
                    facts=split.envelope,
                    domains=ids,
                )
            )
        with database.session() as session:
            parts = session.scalars(
                select(FactsBlob.id).where(FactsBlob.domain == part_domain("packages"))
            ).all()
            assert len(parts) > 10
            new = session.get(Report, 2)
            assert new is not None
            assert load_facts(session, new)["packages"] == changed
            assert load_facts(session, new)["listening"] == LISTENING
    finally:
        database.dispose()
    command.downgrade(alembic_config(db_url), "0006")
    assert current_revision(db_url) == "0006"
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, domain, content FROM facts_blobs ORDER BY id")
        ).all()
    engine.dispose()
    domains = [row[1] for row in rows]
    assert sorted(domains) == ["listening", "packages", "packages"]  # the parts are gone
    texts = {zlib.decompress(bytes(row[2])[1:]).decode() for row in rows}
    assert texts == {canonical(packages()), canonical(changed), canonical(LISTENING)}
