"""The envelope stored per report keeps only what its row does not tell, in the
report's map blob (revision 0008) shared by the host's reports while unchanged;
every report still loads back exactly as sent, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from agent.collectors.base import rfc3339_utc
from rules.derived import parse_timestamp
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.fact_load import domain_blob_ids, load_envelopes, load_facts
from server.storage.fact_store import MAP
from server.storage.models import FactsBlob, Report
from tests.server.helpers import body_of, make_facts


def ingest(
    service: IngestService, database: Database, token: str, facts: dict[str, Any]
) -> tuple[Any, Any]:
    """The envelope as stored (in the report's map blob) and the report as loaded."""
    service.ingest(service.authenticate(token), body_of(facts), None)
    with database.session() as session:
        report = session.scalars(select(Report).where(Report.report_id == facts["report_id"])).one()
        assert (report.facts, report.domains) == ("", None)  # nothing per report
        assert report.map_blob_id is not None
        stored = session.get(FactsBlob, report.map_blob_id)
        assert stored is not None
        assert stored.domain == MAP
        return json.loads(stored.content)["envelope"], load_facts(session, report)


def test_a_plain_envelope_stores_nothing_the_row_tells(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts(seq=1, collected_at=datetime(2026, 11, 30, 8, 0, 1, 250000, tzinfo=UTC))
    stored, loaded = ingest(service, database, token, facts)
    assert stored == {}
    assert loaded == facts
    assert loaded["collected_at"] == "2026-11-30T08:00:01.250000Z"


def test_what_differs_is_kept(service: IngestService, database: Database, token: str) -> None:
    error = {"domain": "firewall", "kind": "permission", "reason": "nft: Operation not permitted"}
    facts = make_facts(seq=2, seq_epoch="e-1", errors=[error])
    facts["collected_at"] = "2026-11-30T08:00:01.5Z"  # valid, but not how the row prints it
    stored, loaded = ingest(service, database, token, facts)
    assert stored == {
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


def test_an_unchanged_host_shares_one_map(
    service: IngestService, database: Database, token: str
) -> None:
    """Revision 0008: reports of an unchanged host (timestamps as the agent writes
    them) refer to one map blob; new errors store a new one and supersede the old."""
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    error = {"domain": "firewall", "kind": "permission", "reason": "denied"}
    documents = [
        make_facts(seq=1, seq_epoch="e-1", collected_at=start),
        make_facts(seq=2, seq_epoch="e-1", collected_at=start + timedelta(minutes=15)),
        make_facts(seq=3, seq_epoch="e-1", collected_at=start + timedelta(minutes=30)),
        make_facts(seq=4, seq_epoch="e-1", errors=[error]),
    ]
    for facts in documents:
        facts["collected_at"] = rfc3339_utc(parse_timestamp(facts["collected_at"]) or start)
        service.ingest(service.authenticate(token), body_of(facts), None)
    with database.session() as session:
        reports = session.scalars(select(Report).order_by(Report.seq)).all()
        maps = [report.map_blob_id for report in reports]
        assert maps[0] == maps[1] == maps[2] != maps[3]
        old, new = session.get(FactsBlob, maps[0]), session.get(FactsBlob, maps[3])
        assert old is not None and new is not None
        assert old.superseded_at is not None and new.superseded_at is None
        assert [load_facts(session, report) for report in reports] == documents
