"""Revision 0008 on a populated 0007 database, on SQLite and PostgreSQL: a report
whose envelope and domain map are in its row still loads; new reports of an
unchanged host share one map blob; downgrade writes the maps back into the rows
(which then load as before), deletes the map blobs and keeps every rule result."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command

from server.storage.database import open_database
from server.storage.fact_load import domain_blob_ids, load_envelopes, load_facts
from server.storage.fact_store import (
    MAP,
    canonical,
    report_map,
    split_facts,
    store_domains,
    store_map,
)
from server.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from server.storage.models import Host, Report
from tests.server.storage.revision_rows import AGENCY_AND_TOKEN, host_row

NOW = "2026-11-27 08:00:00+00"
HOST = {"hostname": "web01", "architecture": "x86_64"}
ERROR = {"domain": "firewall", "kind": "permission", "reason": "nft: denied"}


def old_document() -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": "r-1",
        "agent_id": "agent-1",
        "seq": 1,
        "seq_epoch": "e-1",
        "collected_at": "2026-11-27T08:00:00Z",
        "agent_version": "0.1",
        "errors": [ERROR],
        "host": HOST,
    }


def populate_0007(db_url: str) -> None:
    """One host, one report as 0007 stored it (compact envelope and map in the row),
    and one rule result of that report."""
    statements = [
        *AGENCY_AND_TOKEN,
        host_row("r-1", 1, "0, 0, 0, 0, 0, 0, 0, 0", None),
        "INSERT INTO facts_blobs (host_id, domain, content_hash, content, first_seen_at)"
        " VALUES (1, 'host', :digest, :content, :now)",
        # No explicit id: PostgreSQL's sequence must hand out the next ones (1 here).
        "INSERT INTO reports (report_id, host_id, seq, collected_at, received_at,"
        " agent_version, facts, domains, applied, evaluated) VALUES ('r-1', 1, 1, :now,"
        " :now, '0.1', :envelope, :domains, true, true)",
        "INSERT INTO rule_results (report_pk, rule_id, severity, status, items, errors,"
        " host_id) VALUES (1, 'R-1', 'high', 'pass', :items, '[]', 1)",
    ]
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        values: dict[str, object] = {
            "now": NOW,
            "hash": "0" * 64,
            "content": canonical(HOST).encode(),
            "digest": hashlib.sha256(canonical(HOST).encode()).hexdigest(),
            "envelope": json.dumps({"errors": [ERROR], "seq_epoch": "e-1"}),
            "items": b"[]",
        }
        for statement in statements:
            if statement.startswith("INSERT INTO reports"):
                blob_id = connection.execute(sa.text("SELECT id FROM facts_blobs")).scalar_one()
                values["domains"] = json.dumps({"host": blob_id})
            connection.execute(sa.text(statement), values)
    engine.dispose()


def new_document(seq: int, at: datetime) -> dict[str, Any]:
    return {
        **old_document(),
        "report_id": str(uuid.uuid4()),
        "seq": seq,
        "collected_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),  # as the agent writes it
    }


def add_report(session: Any, seq: int, at: datetime) -> tuple[int, dict[str, Any]]:
    """Store a report as `report_store` does (domains, then the map blob)."""
    document = new_document(seq, at)
    host = session.get(Host, 1)
    split = split_facts(document)
    ids = store_domains(session, host, split, current=True, now=at)
    header = {
        "report_id": document["report_id"],
        "agent_id": "agent-1",
        "seq": seq,
        "collected_at": at,
        "agent_version": "0.1",
    }
    map_id = store_map(session, host, report_map(split, ids, **header), current=True, now=at)
    report = Report(
        host_id=1,
        seq=seq,
        received_at=at,
        facts="",
        domains=None,
        map_blob_id=map_id,
        report_id=document["report_id"],
        collected_at=at,
        agent_version="0.1",
    )
    session.add(report)
    session.flush()
    return report.id, document


def test_populated_0007_upgrades_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0007")
    populate_0007(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()  # 0008, and every later one
    start = datetime(2026, 11, 27, 8, 15, tzinfo=UTC)
    database = open_database(db_url)
    try:
        with database.write() as session:
            second, second_doc = add_report(session, 2, start)
            third, third_doc = add_report(session, 3, start + timedelta(minutes=15))
        with database.session() as session:
            old = session.get(Report, 1)
            assert old is not None and old.map_blob_id is None
            assert load_facts(session, old) == old_document()
            rows = {pk: session.get(Report, pk) for pk in (second, third)}
            maps = {row.map_blob_id for row in rows.values() if row is not None}
            assert len(maps) == 1 and None not in maps  # one map for both reports
            assert load_facts(session, rows[third]) == third_doc  # type: ignore[arg-type]
            envelopes = load_envelopes(session, [1, second, third])
            assert envelopes[second] == {k: v for k, v in second_doc.items() if k != "host"}
            blob_ids = domain_blob_ids(session, [1, second, third], "host")
            # the old row's blob is found by its content and shared
            assert len(set(blob_ids.values())) == 1 and set(blob_ids) == {1, second, third}
    finally:
        database.dispose()

    command.downgrade(alembic_config(db_url), "0007")
    assert current_revision(db_url) == "0007"
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        downgraded = connection.execute(
            sa.text("SELECT id, facts, domains FROM reports ORDER BY id")
        ).all()
        blob_domains = connection.execute(sa.text("SELECT domain FROM facts_blobs")).scalars().all()
        results = connection.execute(sa.text("SELECT count(*) FROM rule_results")).scalar_one()
    engine.dispose()
    assert MAP not in blob_domains and blob_domains == ["host"]
    assert results == 1  # no rule result went with a rebuilt reports table
    stored = {row[0]: (json.loads(row[1]), row[2]) for row in downgraded}
    for pk in (second, third):
        envelope, kept = stored[pk]
        assert envelope == {"errors": [ERROR], "seq_epoch": "e-1"}
        assert (json.loads(kept) if isinstance(kept, str) else kept) == {"host": blob_ids[1]}

    upgrade(db_url)  # the rows downgrade wrote load as 0007's did
    database = open_database(db_url)
    try:
        with database.session() as session:
            loaded = session.get(Report, third)
            assert loaded is not None and loaded.map_blob_id is None
            assert load_facts(session, loaded) == third_doc
    finally:
        database.dispose()
