"""The findings lifecycle writes set-based: an unchanged finding costs no row of its
own, only findings whose state, evidence or message changed are rewritten.

The statements are counted with SQLAlchemy's `before_cursor_execute` event on the
real database (an observer, not a mock: every statement still runs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from rules.language.model import Localized, Severity
from rules.results import ItemResult, RuleResult, Status
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.findings import update_findings
from server.storage.models import Finding, FindingStatus, Host
from tests.server.helpers import body_of, make_facts

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def result(evidence: dict[str, dict[str, Any]]) -> RuleResult:
    items = tuple(
        ItemResult(key, value, Localized(f"hỏng {key}", f"broken {key}"))
        for key, value in evidence.items()
    )
    return RuleResult("R-1", Severity.HIGH, Status.FAIL, Localized("x", "x"), items)


@contextmanager
def finding_writes(database: Database) -> Iterator[list[tuple[str, int]]]:
    """(statement kind, rows given) of each INSERT/UPDATE on findings in the block."""
    seen: list[tuple[str, int]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "findings" in statement and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            rows = len(params) if isinstance(params, list) else 1
            seen.append((statement.split(maxsplit=1)[0].upper(), rows))

    event.listen(database.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", listen)


def apply(database: Database, host_id: int, outcome: RuleResult, at: datetime) -> None:
    with database.write() as session:
        update_findings(session, host_id, [outcome], at)


def test_writes_follow_change(service: IngestService, database: Database, token: str) -> None:
    credential = service.authenticate(token)
    service.ingest(credential, body_of(make_facts(collected_at=T0)), None)
    with database.session() as session:
        host_id = session.scalars(select(Host.id)).one()
    evidence = {f"k{i}": {"port": i} for i in range(40)}
    with finding_writes(database) as writes:
        apply(database, host_id, result(evidence), T0 + timedelta(hours=1))
    assert [kind for kind, _ in writes] == ["INSERT"]  # 40 new findings, one statement

    with finding_writes(database) as writes:
        apply(database, host_id, result(evidence), T0 + timedelta(hours=2))
    assert writes == [("UPDATE", 1)]  # last_seen of all 40 in one statement

    changed = {**evidence, "k3": {"port": 3333}}
    del changed["k5"]
    with finding_writes(database) as writes:
        apply(database, host_id, result(changed), T0 + timedelta(hours=3))
    # k3 rewritten alone, the 38 others seen again in one UPDATE, k5 resolved in one.
    assert sorted(writes) == [("UPDATE", 1), ("UPDATE", 1), ("UPDATE", 1)]

    with database.session() as session:
        rows = {f.item_key: f for f in session.scalars(select(Finding))}
    assert len(rows) == 40
    assert rows["k3"].evidence == {"port": 3333}
    assert rows["k3"].message == {"vi": "hỏng k3", "en": "broken k3"}
    assert rows["k0"].last_seen == T0 + timedelta(hours=3)
    assert rows["k0"].first_seen == T0 + timedelta(hours=1)
    assert (rows["k5"].status, rows["k5"].resolved_at) == (
        FindingStatus.RESOLVED,
        T0 + timedelta(hours=3),
    )
    assert rows["k5"].last_seen == T0 + timedelta(hours=2)

    with finding_writes(database) as writes:
        apply(database, host_id, result(evidence), T0 + timedelta(hours=4))
    # k3 (evidence back) and k5 (reopened) rewritten together; the others seen again.
    assert sorted(writes) == [("UPDATE", 1), ("UPDATE", 2)]
    with database.session() as session:
        k5 = session.scalars(select(Finding).where(Finding.item_key == "k5")).one()
    assert (k5.status, k5.resolved_at, k5.reopened_count) == (FindingStatus.OPEN, None, 1)
    assert k5.last_seen == T0 + timedelta(hours=4)
