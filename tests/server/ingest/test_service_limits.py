"""Ingest service bounds (issue 14): what one report may store, what it may not store
at all, and how many reports decode at once. Real database (SQLite, and PostgreSQL
when CANHGAC_TEST_PG_URL is set, through the shared fixtures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from server.config import ServerConfig
from server.errors import PayloadTooLargeError, TooManyRequestsError
from server.evaluation.loaded_policy import ServerPolicy
from server.ingest.service import MAX_STORED_BYTES, IngestService, limits_of
from server.storage.database import Database
from server.storage.fact_load import load_envelopes
from server.storage.models import FactsBlob, Report
from tests.server.helpers import body_of, make_facts


def _count(database: Database, model: type) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_report_storing_more_than_the_cap_is_413_and_stores_nothing(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts(collected_at=datetime.now(UTC) - timedelta(minutes=1))
    # Every field within the schema's bounds; together more than one report may store.
    items = [
        {"name": f"{i:06d}" + "n" * 200, "version": "v" * 200, "architecture": "amd64"}
        for i in range(30_000)
    ]
    facts["packages"] = {"manager": "dpkg", "count": len(items), "items": items}
    assert len(json.dumps(facts["packages"])) > MAX_STORED_BYTES
    credential = service.authenticate(token)
    with pytest.raises(PayloadTooLargeError) as caught:
        service.ingest(credential, body_of(facts, compress=True), "gzip")
    assert caught.value.code == "report_too_large_to_store"
    assert _count(database, Report) == 0
    assert _count(database, FactsBlob) == 0


def test_unknown_top_level_keys_are_not_stored(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts(collected_at=datetime.now(UTC) - timedelta(minutes=1))
    facts["padding_attack"] = "p" * 100_000
    credential = service.authenticate(token)
    answer = service.ingest(credential, body_of(facts), None).to_body()
    assert answer["status"] == "accepted"
    with database.session() as session:
        stored = list(load_envelopes(session, list(session.scalars(select(Report.id)))).values())
        blobs = list(session.scalars(select(FactsBlob.content)))
    assert len(stored) == 1
    assert "padding_attack" not in stored[0]
    assert all("ppppp" not in blob for blob in blobs)


def test_no_decoding_slot_is_429_overloaded(
    database: Database, policy: ServerPolicy, config: ServerConfig, token: str
) -> None:
    # No slot at all stands for "every slot busy": the refusal path, without a race.
    busy = IngestService(
        database, policy, limits_of(config), max_concurrent_decodes=0, decode_wait=0.05
    )
    credential = busy.authenticate(token)
    with pytest.raises(TooManyRequestsError) as caught:
        busy.ingest(credential, body_of(make_facts(collected_at=datetime.now(UTC))), None)
    assert caught.value.code == "overloaded"
    assert _count(database, Report) == 0
