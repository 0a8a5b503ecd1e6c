"""Parted domains stored and read back on SQLite and PostgreSQL: real agent documents
ingested through the real service load back exactly (load_facts, load_domains); one
changed package stores one part and a new head; retention and late reports keep
every part a kept report needs."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.fact_parts import part_domain
from server.storage.fact_store import MAP, load_domains, load_facts
from server.storage.models import FactsBlob, Report
from server.storage.retention import prune
from tests.server.helpers import body_of, make_facts, new_token, telnet
from tests.server.storage.test_fact_parts import DOCUMENTS


def document(path_index: int = 0) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DOCUMENTS[path_index].read_text())
    return value


def next_report(facts: dict[str, Any], seq: int, version: str | None = None) -> dict[str, Any]:
    """`facts` as a later report: new id and seq; `version` changes one package."""
    changed = copy.deepcopy(facts)
    changed.update(report_id=str(uuid.uuid4()), seq=seq)
    if version is not None:
        changed["packages"]["items"][300]["version"] = version
    return changed


def ingest(service: IngestService, token: str, facts: dict[str, Any]) -> None:
    result = service.ingest(service.authenticate(token), body_of(facts), None)
    assert result.to_body()["status"] == "accepted"


def stored(database: Database, facts: dict[str, Any]) -> dict[str, Any]:
    with database.session() as session:
        report = session.scalars(select(Report).where(Report.report_id == facts["report_id"])).one()
        return load_facts(session, report)


def blobs(database: Database) -> list[FactsBlob]:
    with database.session() as session:
        return list(session.scalars(select(FactsBlob).order_by(FactsBlob.id)))


@pytest.mark.parametrize("index", [0, 1], ids=["machine", "debian12"])
def test_real_documents_load_back_exactly(
    service: IngestService, database: Database, token: str, index: int
) -> None:
    first = document(index)
    ingest(service, token, first)
    assert stored(database, first) == first
    parts = [b for b in blobs(database) if b.domain == part_domain("packages")]
    assert len(parts) > 10  # the packages list is stored in parts
    with database.session() as session:
        pk = session.scalars(select(Report.id)).one()
        assert load_domains(session, [pk], ["packages"]) == {pk: {"packages": first["packages"]}}


def test_one_changed_package_stores_one_part(
    service: IngestService, database: Database, token: str
) -> None:
    first = document()
    ingest(service, token, first)
    before = {b.id: b for b in blobs(database)}
    second = next_report(first, 1, "9.9-changed")
    ingest(service, token, second)
    after = {b.id: b for b in blobs(database)}
    new = [after[i] for i in sorted(after.keys() - before.keys())]
    # and the report's map (revision 0008): its packages blob id changed
    assert sorted(b.domain for b in new) == [MAP, "packages", part_domain("packages")]
    [head] = [b for b in new if b.domain == "packages"]
    assert head.parts is not None and head.superseded_at is None
    [old_head] = [b for b in before.values() if b.domain == "packages"]
    assert old_head.parts is not None and len(head.parts) == len(old_head.parts)
    assert sum(a != b for a, b in zip(head.parts, old_head.parts, strict=True)) == 1
    # The old head and the one part it no longer shares are superseded (and the old
    # map), nothing else.
    superseded = sorted(b.domain for b in after.values() if b.superseded_at is not None)
    assert superseded == [MAP, "packages", part_domain("packages")]
    assert stored(database, first) == first
    assert stored(database, second) == second
    # Back to the first list: its head and part are current again, nothing inserted.
    third = next_report(first, 2)
    ingest(service, token, third)
    assert len(blobs(database)) == len(after)
    current = {b.id for b in blobs(database) if b.superseded_at is None}
    with database.session() as session:
        first_head = session.scalars(
            select(FactsBlob).where(FactsBlob.domain == "packages").order_by(FactsBlob.id)
        ).first()
        assert first_head is not None and first_head.parts is not None
        assert {first_head.id, *first_head.parts} <= current
        assert head.id not in current
    assert stored(database, third) == third


def test_retention_and_late_reports_keep_the_parts_they_need(
    service: IngestService, database: Database, token: str
) -> None:
    first = document()
    ingest(service, token, first)
    newest = next_report(first, 3, "9.9-newest")
    ingest(service, token, newest)
    late = next_report(first, 2)  # an older seq with the first list: history only
    ingest(service, token, late)
    late_blobs = [b for b in blobs(database) if b.superseded_at is not None]
    assert late_blobs and all(b.superseded_at is not None for b in late_blobs)
    assert stored(database, late) == late
    pruned = prune(database, datetime.now(UTC) + timedelta(days=31), 30)
    assert pruned.reports == 2  # the first and the late report; the newest stays
    assert pruned.blobs == len(late_blobs)  # the old head and its own part
    assert stored(database, newest) == newest
    assert all(b.superseded_at is None for b in blobs(database))


def test_no_part_is_shared_across_hosts_or_domains(
    service: IngestService, database: Database, token: str
) -> None:
    """Parts are per host (retention and deletion stay per host)."""
    first = document()
    ingest(service, token, first)
    other = {**next_report(first, 0), "agent_id": "another-agent"}
    ingest(service, new_token(database), other)
    with database.session() as session:
        hosts = session.execute(
            select(FactsBlob.host_id).where(FactsBlob.domain == part_domain("packages")).distinct()
        ).all()
    assert len(hosts) == 2
    assert stored(database, other) == other


def test_a_long_list_domain_is_parted_and_one_change_stores_one_part(
    service: IngestService, database: Database, token: str
) -> None:
    listening = [telnet("127.0.0.1", 2000 + i) for i in range(120)]
    first = make_facts(seq=1, listening=listening)
    ingest(service, token, first)
    before = {b.id for b in blobs(database)}
    moved = copy.deepcopy(listening)
    moved[60]["pid"] = 999  # a service restarted
    second = make_facts(seq=2, listening=moved)
    ingest(service, token, second)
    new = sorted(b.domain for b in blobs(database) if b.id not in before)
    assert new == [MAP, "listening", part_domain("listening")]
    assert stored(database, first) == first
    assert stored(database, second) == second
