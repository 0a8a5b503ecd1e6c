"""Revision 0009 on a populated 0008 database, on SQLite and PostgreSQL: the host's
`results_collected_at` is filled from the report its results belong to; the
findings it saw read as seen up to the host's newest report, the one it did not see
(its rule in error) and the resolved one keep their dates; downgrade writes the
implied dates back into `findings.last_seen` for an older collector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from server.storage.findings import last_seen_of
from server.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from server.storage.models import FindingStatus, UTCDateTime
from tests.server.storage.revision_rows import AGENCY_AND_TOKEN, host_row

EVALUATED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # report 1, the host's results
NEWEST = EVALUATED + timedelta(hours=5)  # unchanged reports since, up to report 2
EARLIER = EVALUATED - timedelta(hours=2)

_FINDINGS = sa.table(
    "findings",
    sa.column("host_id"),
    sa.column("rule_id"),
    sa.column("item_key"),
    sa.column("severity"),
    sa.column("status"),
    sa.column("first_seen", UTCDateTime()),
    sa.column("last_seen", UTCDateTime()),
    sa.column("resolved_at", UTCDateTime()),
    sa.column("reopened_count"),
    sa.column("evidence", sa.JSON()),
    sa.column("message", sa.JSON()),
)
_REPORTS = sa.table(
    "reports",
    sa.column("id"),
    sa.column("report_id"),
    sa.column("host_id"),
    sa.column("seq"),
    sa.column("collected_at", UTCDateTime()),
    sa.column("received_at", UTCDateTime()),
    sa.column("agent_version"),
    sa.column("facts"),
    sa.column("applied"),
    sa.column("evaluated"),
)


def _finding(key: str, status: str, last_seen: datetime) -> dict[str, object]:
    return {
        "host_id": 1,
        "rule_id": "R-1",
        "item_key": key,
        "severity": "high",
        "status": status,
        "first_seen": EARLIER,
        "last_seen": last_seen,
        "resolved_at": last_seen if status == "resolved" else None,
        "reopened_count": 0,
        "evidence": {},
        "message": {},
    }


def populate_0008(db_url: str) -> None:
    """Host 1 evaluated at report 1, its newest report 2 (unchanged facts, not
    evaluated); three findings: seen at report 1, seen only before it, resolved."""
    engine = sa.create_engine(db_url)
    times = {"now": NEWEST, "hash": "0" * 64}
    typed = [sa.bindparam("now", type_=UTCDateTime())]
    with engine.begin() as connection:
        for statement in [*AGENCY_AND_TOKEN, host_row("r-2", 2, "0, 1, 0, 0, 1, 0, 0, 0", 1)]:
            clause = sa.text(statement)
            if ":now" in statement:
                clause = clause.bindparams(*typed)
            connection.execute(clause, {k: v for k, v in times.items() if f":{k}" in statement})
        for pk, at in ((1, EVALUATED), (2, NEWEST)):
            connection.execute(
                _REPORTS.insert().values(
                    id=pk,
                    report_id=f"r-{pk}",
                    host_id=1,
                    seq=pk,
                    collected_at=at,
                    received_at=at,
                    agent_version="0.1",
                    facts="{}",
                    applied=True,
                    evaluated=pk == 1,
                )
            )
        connection.execute(
            _FINDINGS.insert(),
            [
                _finding("seen", "open", EVALUATED),
                _finding("unseen", "open", EARLIER),
                _finding("fixed", "resolved", EVALUATED),
            ],
        )
    engine.dispose()


def _findings(db_url: str) -> dict[str, datetime]:
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(_FINDINGS.c.item_key, _FINDINGS.c.last_seen)).all()
    engine.dispose()
    return {key: seen for key, seen in rows}


def test_populated_0008_upgrades_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0008")
    populate_0008(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()  # 0009, and every later one
    hosts = sa.table(
        "hosts",
        sa.column("results_collected_at", UTCDateTime()),
        sa.column("last_collected_at", UTCDateTime()),
    )
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        results_at, newest = connection.execute(
            sa.select(hosts.c.results_collected_at, hosts.c.last_collected_at)
        ).one()
    engine.dispose()
    assert (results_at, newest) == (EVALUATED, NEWEST)
    stored = _findings(db_url)
    assert stored == {"seen": EVALUATED, "unseen": EARLIER, "fixed": EVALUATED}
    statuses = {"seen": "open", "unseen": "open", "fixed": "resolved"}
    read = {
        key: last_seen_of(FindingStatus(statuses[key]), at, results_at, newest)
        for key, at in stored.items()
    }
    assert read == {"seen": NEWEST, "unseen": EARLIER, "fixed": EVALUATED}

    command.downgrade(alembic_config(db_url), "0008")
    assert current_revision(db_url) == "0008"
    # What an 0008 collector reads is what 0009 computed.
    assert _findings(db_url) == read
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("hosts")}
    engine.dispose()
    assert "results_collected_at" not in columns
