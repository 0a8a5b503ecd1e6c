"""The findings lifecycle: open -> refreshed -> resolved -> reopened, per item key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from rules.language.model import Localized, Severity
from rules.results import ItemResult, RuleResult, Status
from server.errors import DatabaseError
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.findings import FindingChanges, last_seen_of, update_findings
from server.storage.models import Finding, FindingStatus, Host
from tests.server.helpers import body_of, make_facts, telnet

MIGRATIONS = Path(__file__).parents[3] / "server/storage/migrations/versions"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
PUBLIC = "tcp/0.0.0.0:23"
PRIVATE = "tcp/10.0.0.5:23"


def report(service: IngestService, token: str, seq: int, **facts: Any) -> None:
    credential = service.authenticate(token)
    at = T0 + timedelta(hours=seq)
    answer = service.ingest(
        credential, body_of(make_facts(seq=seq, collected_at=at, **facts)), None
    )
    assert answer.status == "accepted"


def findings(database: Database) -> dict[tuple[str, str], Finding]:
    with database.session() as session:
        return {(f.rule_id, f.item_key): f for f in session.scalars(select(Finding))}


def test_lifecycle_open_resolve_reopen(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1, listening=[telnet("0.0.0.0"), telnet("10.0.0.5")])
    found = findings(database)
    assert set(found) == {("TEST-TELNET", PUBLIC), ("TEST-TELNET", PRIVATE)}
    public = found[("TEST-TELNET", PUBLIC)]
    assert (public.status, public.first_seen, public.last_seen) == (
        "open",
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=1),
    )
    assert public.severity == "critical"
    assert public.evidence["address"] == "0.0.0.0"
    assert public.message == {"vi": "Telnet tại 0.0.0.0:23", "en": "Telnet on 0.0.0.0:23"}

    report(service, token, 2, listening=[telnet("0.0.0.0")])
    found = findings(database)
    public, private = found[("TEST-TELNET", PUBLIC)], found[("TEST-TELNET", PRIVATE)]
    assert (public.status, public.last_seen, public.resolved_at) == (
        "open",
        T0 + timedelta(hours=2),
        None,
    )
    assert (private.status, private.resolved_at) == ("resolved", T0 + timedelta(hours=2))
    assert private.last_seen == T0 + timedelta(hours=1)

    report(service, token, 3, listening=[telnet("0.0.0.0"), telnet("10.0.0.5")])
    private = findings(database)[("TEST-TELNET", PRIVATE)]
    assert (private.status, private.resolved_at, private.reopened_count) == ("open", None, 1)
    assert private.first_seen == T0 + timedelta(hours=1)  # the history is kept
    assert private.last_seen == T0 + timedelta(hours=3)

    report(service, token, 4, listening=[])
    found = findings(database)
    assert {f.status for f in found.values()} == {"resolved"}
    assert {f.resolved_at for f in found.values()} == {T0 + timedelta(hours=4)}
    assert len(found) == 2  # one row per (host, rule, item) for ever


def test_an_older_report_does_not_touch_findings(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 5, listening=[])
    report(service, token, 2, listening=[telnet()])  # delivered late from the spool
    assert findings(database) == {}


def test_rule_level_finding_and_error_that_resolves_nothing(
    service: IngestService, database: Database, token: str
) -> None:
    arm = make_facts()["host"] | {"architecture": "aarch64"}
    report(service, token, 1, host=arm)
    finding = findings(database)[("TEST-ARCH", "")]
    assert finding.status == "open"
    assert finding.message["en"] == "Architecture aarch64"
    # Without host facts the rule errors: the finding is neither resolved nor refreshed.
    credential = service.authenticate(token)
    facts = make_facts(seq=2, collected_at=T0 + timedelta(hours=2))
    del facts["host"]
    service.ingest(credential, body_of(facts), None)
    finding = findings(database)[("TEST-ARCH", "")]
    assert (finding.status, finding.last_seen) == ("open", T0 + timedelta(hours=1))
    report(service, token, 3)
    assert findings(database)[("TEST-ARCH", "")].status == "resolved"


def only_host_id(database: Database) -> int:
    with database.session() as session:
        return session.scalars(select(Host.id)).one()


def _result(status: Status, *keys: str) -> RuleResult:
    text = Localized("x", "x")
    items = tuple(ItemResult(key, {"key": key}, Localized(key, key)) for key in keys)
    return RuleResult("R-1", Severity.HIGH, status, text, items)


def apply(database: Database, result: RuleResult, at: datetime) -> FindingChanges:
    with database.write() as session:
        return update_findings(session, only_host_id(database), [result], at)


def test_error_opens_its_certain_items_but_resolves_none(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1)
    apply(database, _result(Status.FAIL, "a", "b"), T0)
    changes = apply(database, _result(Status.ERROR, "c"), T0 + timedelta(1))
    assert (changes.opened, changes.resolved) == (1, 0)
    statuses = {key: f.status for (_, key), f in findings(database).items()}
    assert statuses == {"a": "open", "b": "open", "c": "open"}


def test_waived_findings_stay_dated_and_reopen_when_the_waiver_ends(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1)
    apply(database, _result(Status.FAIL, "a", "b"), T0)
    # a waiver now covers the whole rule: still seen, not open, not resolved
    assert apply(database, _result(Status.WAIVED, "a", "b"), T0 + timedelta(1)).resolved == 0
    a = findings(database)[("R-1", "a")]
    assert (a.status, a.first_seen, a.last_seen) == ("waived", T0, T0 + timedelta(1))
    # item b is fixed while waived: resolved as usual
    assert apply(database, _result(Status.WAIVED, "a"), T0 + timedelta(2)).resolved == 1
    assert findings(database)[("R-1", "b")].status == "resolved"
    # the waiver expired: the same finding is open again, first seen unchanged
    apply(database, _result(Status.FAIL, "a"), T0 + timedelta(3))
    a = findings(database)[("R-1", "a")]
    assert (a.status, a.first_seen, a.reopened_count) == ("open", T0, 0)
    assert apply(database, _result(Status.NOT_APPLICABLE), T0 + timedelta(4)).resolved == 1
    assert findings(database)[("R-1", "a")].status == "resolved"


def test_a_failure_waived_from_the_start_is_a_waived_finding(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1)
    apply(database, _result(Status.WAIVED, "x"), T0)
    assert findings(database)[("R-1", "x")].status == "waived"


def test_duplicate_item_keys_make_one_finding(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1)
    assert apply(database, _result(Status.FAIL, "a", "a"), T0).opened == 1
    assert len(findings(database)) == 1


def test_statuses_are_finding_status_members(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1, listening=[telnet()])
    (finding,) = findings(database).values()
    assert finding.status is FindingStatus.OPEN
    assert finding.status.active
    assert not FindingStatus.RESOLVED.active
    active = {status for status in FindingStatus if status.active}
    assert active == {FindingStatus.OPEN, FindingStatus.WAIVED}
    # Revision 0009's downgrade names them as SQL literals.
    assert "('open', 'waived')" in (MIGRATIONS / "0009_results_collected_at.py").read_text()


def test_last_seen_is_implied_only_for_findings_the_current_evaluation_saw() -> None:
    evaluated, newest = T0 + timedelta(hours=1), T0 + timedelta(hours=5)
    # Seen at the current evaluation, still active: every later (unchanged) report saw it.
    assert last_seen_of(FindingStatus.OPEN, evaluated, evaluated, newest) == newest
    assert last_seen_of(FindingStatus.WAIVED, evaluated, evaluated, newest) == newest
    # Not seen by it (its rule was in error): the date it was really seen stays.
    assert last_seen_of(FindingStatus.OPEN, T0, evaluated, newest) == T0
    # Resolved, or a host never evaluated: the stored date.
    assert last_seen_of(FindingStatus.RESOLVED, evaluated, evaluated, newest) == evaluated
    assert last_seen_of(FindingStatus.OPEN, evaluated, None, newest) == evaluated


def test_a_status_that_is_not_a_finding_status_is_refused(
    service: IngestService, database: Database, token: str
) -> None:
    report(service, token, 1, listening=[telnet()])
    with (
        pytest.raises(DatabaseError, match="'closed' is not a valid FindingStatus"),
        database.write() as session,
    ):
        session.execute(update(Finding).values(status="closed"))
    assert findings(database)[("TEST-TELNET", PUBLIC)].status is FindingStatus.OPEN
