"""The envelope stored per report keeps only what its row does not tell; every
report still loads back exactly as sent, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.fact_store import load_facts
from server.storage.models import Report
from tests.server.helpers import body_of, make_facts


def ingest(
    service: IngestService, database: Database, token: str, facts: dict[str, Any]
) -> tuple[str, Any]:
    service.ingest(service.authenticate(token), body_of(facts), None)
    with database.session() as session:
        report = session.scalars(select(Report).where(Report.report_id == facts["report_id"])).one()
        return report.facts, load_facts(session, report)


def test_a_plain_envelope_stores_nothing_the_row_tells(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts(seq=1, collected_at=datetime(2026, 11, 30, 8, 0, 1, 250000, tzinfo=UTC))
    stored, loaded = ingest(service, database, token, facts)
    assert json.loads(stored) == {}
    assert loaded == facts
    assert loaded["collected_at"] == "2026-11-30T08:00:01.250000Z"


def test_what_differs_is_kept(service: IngestService, database: Database, token: str) -> None:
    error = {"domain": "firewall", "kind": "permission", "reason": "nft: Operation not permitted"}
    facts = make_facts(seq=2, seq_epoch="e-1", errors=[error])
    facts["collected_at"] = "2026-11-30T08:00:01.5Z"  # valid, but not how the row prints it
    stored, loaded = ingest(service, database, token, facts)
    assert json.loads(stored) == {
        "collected_at": "2026-11-30T08:00:01.5Z",
        "errors": [error],
        "seq_epoch": "e-1",
    }
    assert loaded == facts
