"""The envelope stored per report keeps only what its row does not tell; every
report still loads back exactly as sent, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.fact_load import domain_blob_ids, load_envelopes, load_facts
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


def test_envelopes_and_blob_ids_for_readers(
    service: IngestService, database: Database, token: str
) -> None:
    error = {"domain": "firewall", "kind": "permission", "reason": "denied"}
    first = make_facts(seq=1, errors=[error])
    second = make_facts(seq=2, seq_epoch="e-2")  # same host and listening domain
    for facts in (first, second):
        service.ingest(service.authenticate(token), body_of(facts), None)
    with database.write() as session:
        pks = list(session.scalars(select(Report.id).order_by(Report.id)))
        # A row as revision 0001 stored it: the whole document, no domain map.
        old = make_facts(seq=0, report_id=str(uuid.uuid4()), errors=[error])
        row = Report(
            report_id=old["report_id"],
            host_id=session.scalars(select(Report.host_id)).first(),
            seq=0,
            collected_at=datetime.now(UTC),
            received_at=datetime.now(UTC),
            agent_version="0.1.0",
            facts=json.dumps(old),
            domains=None,
        )
        session.add(row)
        session.flush()
        pks.append(row.id)
    with database.session() as session:
        envelopes = load_envelopes(session, [*pks, 10**9])
        blob_ids = domain_blob_ids(session, pks, "listening")
    domains = {"host", "listening"}
    assert envelopes == {
        pk: {k: v for k, v in facts.items() if k not in domains}
        for pk, facts in zip(pks, (first, second, old), strict=True)
    }
    assert set(blob_ids) == set(pks[:2])  # the old row has no blob
    assert blob_ids[pks[0]] == blob_ids[pks[1]]  # the same content, the same blob
