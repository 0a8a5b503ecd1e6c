"""The ingest core without HTTP: storage, host state, token binding, duplicates, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import server.ingest.service as ingest_module
from server.auth.agent_tokens import revoke_token
from server.clock import utc_now
from server.errors import DatabaseError, ForbiddenError, UnauthorizedError
from server.ingest.service import IngestService
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database
from server.storage.fact_store import load_facts
from server.storage.models import AgentToken, Host, Report, RuleResultRow
from tests.server.helpers import body_of, make_facts, new_token, stored_state, telnet


def ingest(service: IngestService, token: str, facts: dict[str, Any]) -> dict[str, Any]:
    credential = service.authenticate(token)
    return service.ingest(credential, body_of(facts), None).to_body()


def host_row(database: Database, agent_id: str = "agent-1") -> Host:
    with database.session() as session:
        return session.scalars(select(Host).where(Host.agent_id == agent_id)).one()


def test_accepted_report_stores_everything(
    service: IngestService, database: Database, token: str, cache: HostStateCache
) -> None:
    collected = datetime.now(UTC) - timedelta(minutes=1)
    facts = make_facts(collected_at=collected, listening=[telnet()])
    answer = ingest(service, token, facts)
    assert answer["status"] == "accepted"
    host = host_row(database)
    assert (host.hostname, host.os_pretty_name, host.agent_version) == (
        "web01",
        "Debian 12",
        "0.1.0",
    )
    assert (host.last_seq, host.last_report_id, host.agency_id) == (
        1,
        facts["report_id"],
        "so-test",
    )
    assert host.last_collected_at == collected
    assert host.last_collected_at.tzinfo is UTC
    assert host.score_ratio == pytest.approx(3 / 13)
    assert (host.passed_count, host.failed_count, host.error_count) == (2, 1, 0)
    assert (host.failing_critical, host.failing_high, host.failing_medium) == (1, 0, 0)
    assert host.token_id == token.split("_")[1]
    with database.session() as session:
        report = session.scalars(select(Report)).one()
        assert load_facts(session, report) == facts  # exactly what was evaluated
        assert report.host_id == host.id
        statuses = {r.rule_id: r.status for r in session.scalars(select(RuleResultRow))}
        assert statuses == {
            "TEST-TELNET": "fail",
            "TEST-ARCH": "pass",
            "TEST-AGENT-VERSION": "pass",
        }
        bound = session.get(AgentToken, host.token_id)
        assert bound is not None
        assert bound.agent_id == "agent-1"
        assert bound.last_used_at is not None
    [snapshot] = cache.snapshots()
    assert (snapshot.agent_id, snapshot.last_seq, snapshot.score_ratio) == (
        "agent-1",
        1,
        host.score_ratio,
    )


def test_report_without_host_facts_counts_the_error(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts()
    del facts["host"]
    answer = ingest(service, token, facts)
    assert answer["score"] == pytest.approx(11 / 13)  # medium rule errors: never a pass
    host = host_row(database)
    assert (host.hostname, host.os_pretty_name, host.error_count) == ("agent-1", None, 1)


def test_an_older_seq_is_history_only(
    service: IngestService, database: Database, token: str, cache: HostStateCache
) -> None:
    ingest(service, token, make_facts(seq=5, hostname="new-name"))
    answer = ingest(service, token, make_facts(seq=3, hostname="old-name", listening=[telnet()]))
    assert answer["status"] == "accepted"
    host = host_row(database)
    assert (host.last_seq, host.hostname, host.score_ratio) == (5, "new-name", 1.0)
    assert stored_state(database)["reports"] == 2
    assert stored_state(database)["findings"] == 0
    [snapshot] = cache.snapshots()
    assert (snapshot.last_seq, snapshot.hostname) == (5, "new-name")


def test_token_revoked_after_authentication_is_refused(
    service: IngestService, database: Database, token: str
) -> None:
    credential = service.authenticate(token)
    with database.write() as session:
        revoke_token(session, credential.token_id, utc_now)
    before = stored_state(database)
    with pytest.raises(UnauthorizedError):
        service.ingest(credential, body_of(make_facts()), None)
    assert stored_state(database) == before


def test_first_use_binding_is_decided_in_the_transaction(
    service: IngestService, database: Database, token: str
) -> None:
    """Two credentials read before first use: only the first agent gets the token."""
    first = service.authenticate(token)
    second = service.authenticate(token)
    assert first.agent_id is None and second.agent_id is None
    service.ingest(first, body_of(make_facts(agent_id="agent-1")), None)
    before = stored_state(database)
    with pytest.raises(ForbiddenError) as caught:
        service.ingest(second, body_of(make_facts(agent_id="agent-2")), None)
    assert caught.value.code == "token_bound_to_other_agent"
    assert stored_state(database) == before


def test_an_unused_token_cannot_take_over_an_existing_host(
    service: IngestService, database: Database, token: str
) -> None:
    ingest(service, token, make_facts(seq=1))
    other = new_token(database)  # same agency, never used
    before = stored_state(database)
    with pytest.raises(ForbiddenError) as caught:
        ingest(service, other, make_facts(seq=2))
    assert caught.value.status == 403
    assert caught.value.code == "host_has_active_token"
    assert stored_state(database) == before
    assert host_row(database).token_id == token.split("_")[1]


def test_token_rotation_revoke_the_old_then_the_new_one_binds(
    service: IngestService, database: Database, token: str
) -> None:
    ingest(service, token, make_facts(seq=1))
    rotated = new_token(database)
    with database.write() as session:
        revoke_token(session, token.split("_")[1], utc_now)
    assert ingest(service, rotated, make_facts(seq=2))["status"] == "accepted"
    assert host_row(database).token_id == rotated.split("_")[1]


def test_missing_token_is_unauthorized(service: IngestService) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        service.authenticate(None)
    assert caught.value.code == "missing_token"


def test_duplicate_found_only_at_commit_is_answered_duplicate(
    service: IngestService, database: Database, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica stores the same report id between our check and our insert."""
    real_store = ingest_module.store_report
    calls = 0

    def racing_store(session: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        # Our transaction loses the race: release it (SQLite has one writer), let the
        # other replica's transaction commit the same report, then hit the constraint.
        session.rollback()
        with database.write() as other:
            real_store(other, *args, **kwargs)
        raise IntegrityError("INSERT INTO reports", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(ingest_module, "store_report", racing_store)
    answer = ingest(service, token, make_facts())
    assert answer["status"] == "duplicate"
    assert calls == 1
    assert stored_state(database)["reports"] == 1


def test_persistent_integrity_error_is_a_database_error(
    service: IngestService, database: Database, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def conflicting_store(*_args: Any, **_kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise IntegrityError("INSERT INTO hosts", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(ingest_module, "store_report", conflicting_store)
    before = stored_state(database)
    with pytest.raises(DatabaseError):
        ingest(service, token, make_facts())
    assert calls == 2  # retried once
    assert stored_state(database) == before


def test_concurrent_deliveries_of_one_report_store_it_once(
    service: IngestService, database: Database, token: str
) -> None:
    facts = make_facts()
    credential = service.authenticate(token)
    answers: list[str] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        answers.append(service.ingest(credential, body_of(facts), None).status)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == ["accepted"] + ["duplicate"] * 5
    assert stored_state(database)["reports"] == 1


def test_concurrent_agents_all_stored(service: IngestService, database: Database) -> None:
    tokens = [new_token(database) for _ in range(4)]
    errors: list[BaseException] = []

    def deliver(index: int) -> None:
        try:
            for seq in range(1, 4):
                ingest(service, tokens[index], make_facts(agent_id=f"agent-{index}", seq=seq))
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    state = stored_state(database)
    assert (state["hosts"], state["reports"]) == (4, 12)
