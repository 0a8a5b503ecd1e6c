"""Keys the facts schema does not define, inside its objects: dropped, counted, never
stored; a report that carries them is still accepted (a newer agent's additive
fields must not lose whole reports). Through the ingest service and a real server
on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from server.config import ServerConfig
from server.ingest.payload import decode_document
from server.ingest.service import IngestService, limits_of
from server.ingest.unknown_keys import SAMPLE_PATHS, prune_unknown_keys
from server.storage.database import Database
from server.storage.fact_store import load_facts
from server.storage.models import FactsBlob, Report
from tests.server.conftest import LiveServers
from tests.server.helpers import body_of, make_facts, telnet

JUNK = "x" * 3_000_000  # the reviewer's case: 3 MB of text in a known section


def with_unknown_keys(facts: dict[str, Any]) -> dict[str, Any]:
    facts = copy.deepcopy(facts)
    facts["host"]["extra_unknown"] = JUNK
    facts["host"]["os"]["junk"] = {"nested": [1, 2, 3]}
    facts["listening"][0]["banner"] = "not in the schema"
    facts["errors"] = [
        {"domain": "firewall", "kind": "permission", "reason": "nft: denied", "trace": "..."}
    ]
    return facts


def test_prunes_every_object_the_schema_describes_and_names_where() -> None:
    facts = with_unknown_keys(make_facts(listening=[telnet(), telnet(port=2323)]))
    clean = make_facts(listening=[telnet(), telnet(port=2323)])
    dropped = prune_unknown_keys(facts)
    assert dropped.count == 4
    assert dropped.paths == [
        "host.extra_unknown",
        "host.os.junk",
        "listening[0].banner",
        "errors[0].trace",
    ]
    for key in ("report_id", "collected_at"):
        facts[key] = clean[key]  # made apart: their ids and times differ
    assert facts["host"] == clean["host"]
    assert facts["listening"] == clean["listening"]
    assert facts["errors"] == [
        {"domain": "firewall", "kind": "permission", "reason": "nft: denied"}
    ]


def test_a_valid_document_loses_nothing() -> None:
    facts = make_facts(listening=[telnet()])
    before = json.dumps(facts, sort_keys=True)
    assert prune_unknown_keys(facts).count == 0
    assert json.dumps(facts, sort_keys=True) == before


def test_domains_trusted_for_their_bytes_are_not_walked() -> None:
    facts = with_unknown_keys(make_facts(listening=[telnet()]))
    dropped = prune_unknown_keys(facts, skip={"host", "listening"})
    assert dropped.paths == ["errors[0].trace"]
    assert "extra_unknown" in facts["host"]  # stored as pruned when first seen


def test_paths_sampled_count_whole() -> None:
    facts = make_facts(listening=[dict(telnet(port=p), junk=p) for p in range(1, 40)])
    dropped = prune_unknown_keys(facts)
    assert dropped.count == 39
    assert len(dropped.paths) == SAMPLE_PATHS
    assert dropped.paths[0] == "listening[0].junk"


def test_decoded_document_reports_what_it_dropped(config: ServerConfig) -> None:
    facts = with_unknown_keys(make_facts(listening=[telnet()]))
    facts["surprise"] = 1  # a top-level one, dropped as before
    document = decode_document(body_of(facts), None, limits_of(config), datetime.now(UTC))
    assert document.dropped_keys == ("surprise",)
    assert document.dropped_nested == 4
    assert "extra_unknown" not in document.data["host"]


def _blob_bytes(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.sum(func.length(FactsBlob.content)))) or 0)


def test_stored_without_them_and_answered(
    service: IngestService, database: Database, token: str
) -> None:
    facts = with_unknown_keys(make_facts(listening=[telnet()]))
    result = service.ingest(service.authenticate(token), body_of(facts), None)
    assert result.status == "accepted"
    assert result.dropped_keys == 4
    assert result.to_body()["dropped_keys"] == 4
    assert _blob_bytes(database) < 100_000  # not the 3 MB string
    with database.session() as session:
        report = session.scalars(select(Report)).one()
        stored = load_facts(session, report)
    assert "extra_unknown" not in stored["host"] and "junk" not in stored["host"]["os"]
    assert "banner" not in stored["listening"][0]
    # The same bytes again (the domains trusted for them): still not stored, no new blob.
    blobs = _blob_bytes(database)
    again = dict(facts, seq=2, report_id=str(uuid.uuid4()))
    second = service.ingest(service.authenticate(token), body_of(again), None)
    assert second.status == "accepted"
    assert _blob_bytes(database) == blobs


def test_counted_in_the_metrics(live_servers: LiveServers, token: str) -> None:
    server = live_servers.start()
    facts = with_unknown_keys(make_facts(listening=[telnet()]))
    response = requests.post(
        server.reports_url,
        data=body_of(facts, compress=True),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["dropped_keys"] == 4
    text = requests.get(f"{server.url}/metrics", timeout=30).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name == "canhgac_report_unknown_keys_dropped"
    }
    assert values["canhgac_report_unknown_keys_dropped_total"] == 4
