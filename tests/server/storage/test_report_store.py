"""Storage grows with change: facts by domain, unchanged facts not re-evaluated,
seq epochs, stable host labels, capped item keys, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rules.derived import add_derived, parse_timestamp
from rules.language.model import Localized, Severity
from rules.results import ItemResult, RuleResult, Status
from server.ingest.service import IngestService, limits_of
from server.storage.database import Database
from server.storage.fact_store import MAP, load_facts
from server.storage.findings import ITEM_KEY_MAX, last_seen_of, update_findings
from server.storage.models import FactsBlob, Finding, Host, Report, RuleResultRow
from server.storage.retention import prune
from tests.server.helpers import body_of, make_facts, new_token, stored_state, telnet


def ingest(service: IngestService, token: str, facts: dict[str, Any]) -> dict[str, Any]:
    result = service.ingest(service.authenticate(token), body_of(facts), None)
    body = result.to_body()
    body["evaluated"] = result.evaluated
    return body


def count(database: Database, model: Any) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def domain_blobs(database: Database) -> int:
    """Blobs of facts domains: not the reports' maps (revision 0008), which the test
    helpers' timestamps (always with microseconds, unlike the agent's) make differ."""
    with database.session() as session:
        query = select(func.count()).select_from(FactsBlob).where(FactsBlob.domain != MAP)
        return int(session.scalar(query) or 0)


def host(database: Database, agent_id: str = "agent-1") -> Host:
    with database.session() as session:
        return session.scalars(select(Host).where(Host.agent_id == agent_id)).one()


def test_unchanged_domains_are_stored_once_and_not_re_evaluated(
    service: IngestService, database: Database, token: str
) -> None:
    first = ingest(service, token, make_facts(seq=1, listening=[telnet()]))
    assert first["evaluated"] is True
    blobs = domain_blobs(database)
    assert blobs == 2  # host, listening
    results = count(database, RuleResultRow)
    second = ingest(service, token, make_facts(seq=2, listening=[telnet()]))
    assert second["evaluated"] is False  # same facts, same policy, same day
    assert (second["score"], second["failing"], second["applied"]) == (
        first["score"],
        first["failing"],
        True,
    )
    assert domain_blobs(database) == blobs
    assert count(database, RuleResultRow) == results  # no new results rows
    assert count(database, Report) == 2
    state = host(database)
    assert state.last_seq == 2
    with database.session() as session:
        [finding] = session.scalars(select(Finding))
        assert finding.status == "open"
        # Seen again without evaluating and without rewriting the finding: the row
        # still says the first report, the host's times say the second one.
        assert finding.last_seen == finding.first_seen == state.results_collected_at
        assert state.last_collected_at > finding.first_seen
        seen = last_seen_of(
            finding.status, finding.last_seen, state.results_collected_at, state.last_collected_at
        )
        assert seen == state.last_collected_at
    third = ingest(service, token, make_facts(seq=3, listening=[]))  # one domain changed
    assert third["evaluated"] is True
    assert domain_blobs(database) == blobs + 1
    with database.session() as session:
        superseded = session.scalars(
            select(FactsBlob).where(FactsBlob.superseded_at.is_not(None), FactsBlob.domain != MAP)
        ).all()
        assert [b.domain for b in superseded] == ["listening"]


def test_flip_flopping_content_reuses_its_blob(
    service: IngestService, database: Database, token: str
) -> None:
    ingest(service, token, make_facts(seq=1, listening=[telnet()]))
    ingest(service, token, make_facts(seq=2, listening=[]))
    ingest(service, token, make_facts(seq=3, listening=[telnet()]))
    assert domain_blobs(database) == 3
    with database.session() as session:
        current = session.scalars(
            select(FactsBlob.domain).where(FactsBlob.superseded_at.is_(None))
        ).all()
    assert sorted(current) == [MAP, "host", "listening"]


def test_a_new_day_is_evaluated_again(
    database: Database, policy: Any, config: Any, token: str
) -> None:
    """Waivers expire by date: unchanged facts are re-evaluated once a day."""
    now = [datetime(2026, 11, 27, 23, 0, tzinfo=UTC)]
    service = IngestService(database, policy, limits_of(config), clock=lambda: now[0])
    collected = now[0] - timedelta(minutes=1)
    assert ingest(service, token, make_facts(seq=1, collected_at=collected))["evaluated"]
    assert not ingest(service, token, make_facts(seq=2, collected_at=collected))["evaluated"]
    now[0] += timedelta(hours=2)
    assert ingest(service, token, make_facts(seq=3, collected_at=collected))["evaluated"]


def test_a_new_seq_epoch_starts_over(
    service: IngestService, database: Database, token: str
) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    ingest(service, token, make_facts(seq=50, seq_epoch="epoch-a", collected_at=old))
    # counter reset: lower seq, new epoch, collected later -> current state
    restarted = ingest(
        service,
        token,
        make_facts(
            seq=1, seq_epoch="epoch-b", hostname="renamed", collected_at=old + timedelta(hours=1)
        ),
    )
    assert restarted["applied"] is True
    state = host(database)
    assert (state.last_seq, state.seq_epoch, state.hostname) == (1, "epoch-b", "renamed")
    # same epoch, lower seq: history only
    late = ingest(
        service,
        token,
        make_facts(
            seq=0, seq_epoch="epoch-b", hostname="late", collected_at=old + timedelta(minutes=90)
        ),
    )
    assert late["applied"] is False
    # an old epoch's report collected before the current state: history only
    older = ingest(
        service,
        token,
        make_facts(
            seq=51, seq_epoch="epoch-a", hostname="older", collected_at=old + timedelta(minutes=5)
        ),
    )
    assert older["applied"] is False
    state = host(database)
    assert (state.last_seq, state.seq_epoch, state.hostname) == (1, "epoch-b", "renamed")
    assert stored_state(database)["reports"] == 4


def test_host_labels_are_decided_once(service: IngestService, database: Database) -> None:
    first = new_token(database)
    second = new_token(database)
    ingest(service, first, make_facts(agent_id="aaaaaaaa-1111", hostname="web01"))
    ingest(service, second, make_facts(agent_id="bbbbbbbb-2222", hostname="web01"))
    assert host(database, "aaaaaaaa-1111").label == "web01"  # unchanged by the second
    assert host(database, "bbbbbbbb-2222").label == "web01/bbbbbbbb"
    ingest(service, first, make_facts(agent_id="aaaaaaaa-1111", hostname="web02", seq=2))
    moved = host(database, "aaaaaaaa-1111")
    assert (moved.hostname, moved.label) == ("web02", "web01")


def test_long_item_keys_are_capped_and_stay_distinct(
    database: Database, token: str, service: IngestService
) -> None:
    ingest(service, token, make_facts())
    host_id = host(database).id
    title = Localized("t", "t")
    keys = ["k" * 5000 + "1", "k" * 5000 + "2"]
    result = RuleResult(
        "TEST-LONG", Severity.LOW, Status.FAIL, title, tuple(ItemResult(k, {}, title) for k in keys)
    )
    with database.write() as session:
        update_findings(session, host_id, [result], datetime.now(UTC))
    with database.session() as session:
        stored = sorted(session.scalars(select(Finding.item_key)))
    assert len(stored) == 2 and len(set(stored)) == 2
    assert all(len(k) <= ITEM_KEY_MAX for k in stored)


def test_retention_keeps_latest_facts_and_findings(
    service: IngestService, database: Database, token: str
) -> None:
    ingest(service, token, make_facts(seq=1, listening=[telnet()]))
    ingest(service, token, make_facts(seq=2, listening=[]))
    # The agent's state was reset (a new seq epoch) and its facts did not change.
    ingest(service, token, make_facts(seq=3, listening=[], seq_epoch="e-2"))
    before = stored_state(database)
    assert prune(database, datetime.now(UTC), 30).reports == 0  # nothing old yet
    pruned = prune(database, datetime.now(UTC) + timedelta(days=31), 30)
    # seq 3 had the same facts as seq 2: seq 2 holds the current results, both stay;
    # the old listening blob and seq 1's map go
    assert (pruned.reports, pruned.blobs) == (1, 2)
    after = stored_state(database)
    assert after["reports"] == 2 and after["findings"] == before["findings"] == 1
    state = host(database)
    with database.session() as session:
        latest = session.get(Report, state.last_report_pk)
        assert latest is not None and latest.seq == 3
        assert load_facts(session, latest)["listening"] == []
        # seq 2's map (without seq 3's epoch) was superseded a month ago, and is
        # kept: seq 2 holds the host's results
        results = session.get(Report, state.results_report_pk)
        assert results is not None and results.seq == 2 and results.map_blob_id is not None
        superseded = session.get(FactsBlob, results.map_blob_id)
        assert superseded is not None and superseded.superseded_at is not None
        assert load_facts(session, results)["seq"] == 2


@pytest.mark.parametrize("days", [1, 90])
def test_retention_on_an_empty_database(database: Database, days: int) -> None:
    assert prune(database, datetime.now(UTC), days).reports == 0


def test_long_hostnames_get_distinct_labels(service: IngestService, database: Database) -> None:
    name = "h" * 255  # the schema's maximum
    ids = ("aaaaaaaa-1111", "aaaaaaaa-2222", "aaaaaaaa-3333")  # same 8-character prefix
    for agent_id in ids:
        answer = ingest(service, new_token(database), make_facts(agent_id=agent_id, hostname=name))
        assert answer["status"] == "accepted"
    labels = [host(database, agent_id).label for agent_id in ids]
    assert len(set(labels)) == 3
    assert all(len(label) <= 255 for label in labels)


def test_ages_that_only_moved_with_time_store_nothing_new(
    service: IngestService, database: Database, token: str
) -> None:
    """uptime and days_left change at every report; the host did not: same blobs, and
    the stored facts come back with the ages as the agent reported them."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def facts(seq: int, at: datetime) -> dict[str, Any]:
        document = make_facts(seq=seq, collected_at=at, certificates=[_certificate()])
        document["host"]["boot_time"] = "2026-01-01T00:00:00Z"
        moment = parse_timestamp(document["collected_at"])
        assert moment is not None
        return add_derived(document, moment)  # what a real agent sends

    first_doc, second_doc = facts(1, start), facts(2, start + timedelta(minutes=15))
    assert first_doc["host"]["uptime_seconds"] != second_doc["host"]["uptime_seconds"]
    ingest(service, token, first_doc)
    blobs = domain_blobs(database)
    second = ingest(service, token, second_doc)
    assert second["evaluated"] is False
    assert domain_blobs(database) == blobs
    with database.session() as session:
        latest = session.scalars(select(Report).order_by(Report.seq.desc())).first()
        assert latest is not None
        assert load_facts(session, latest) == second_doc


def _certificate() -> dict[str, Any]:
    return {
        "location": "/etc/ssl/certs/portal.pem#0",
        "source": "file",
        "path": "/etc/ssl/certs/portal.pem",
        "address": None,
        "port": None,
        "chain_position": 0,
        "subject": "CN=portal.example.gov.vn",
        "issuer": "CN=Province CA",
        "serial": "0a1b",
        "san": ["portal.example.gov.vn"],
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": "2027-01-01T00:00:00Z",
        "key_type": "RSA",
        "key_bits": 2048,
        "curve": None,
        "signature_algorithm": "sha256WithRSAEncryption",
        "signature_hash": "sha256",
        "self_signed": False,
        "is_ca": False,
        "fingerprint_sha256": "ab" * 32,
        "exposure": None,
        "tls_version": None,
        "chain_verified": None,
        "verify_error": None,
        "hostname_matches": None,
        "accepts_tls10": None,
        "accepts_tls11": None,
    }
