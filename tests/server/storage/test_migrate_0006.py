"""Revision 0006 on a populated 0005 database, on SQLite and PostgreSQL: each report
keeps reading exactly its own rows, the first evaluation after the upgrade starts the
chain of changed-only rows, and downgrade gives every evaluated report its whole set
back."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from rules.language.model import Localized, Severity
from rules.results import RuleResult, Status
from server.storage.database import open_database
from server.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from server.storage.models import Report, RuleResultRow
from server.storage.rule_results import in_effect, write_results
from tests.server.storage.revision_rows import AGENCY_AND_TOKEN, host_row

NOW = "2026-11-27 08:00:00+00"
TITLE = Localized("t", "t")


def populate_0005(db_url: str) -> None:
    """One host, two evaluated reports with two rules each, as 0005's code wrote them."""
    rows = [
        *AGENCY_AND_TOKEN,
        host_row("r-2", 2, "1, 1, 0, 1, 0, 0, 0, 0", 2),
    ]
    for pk in (1, 2):
        rows.append(
            "INSERT INTO reports (id, report_id, host_id, seq, collected_at, received_at,"
            f" agent_version, facts, domains, applied, evaluated) VALUES ({pk}, 'r-{pk}', 1,"
            f" {pk}, :now, :now, '0.1', '{{}}', '{{}}', true, true)"
        )
        for rule, status in (("R-A", "fail" if pk == 1 else "pass"), ("R-B", "pass")):
            rows.append(
                "INSERT INTO rule_results (report_pk, rule_id, severity, status, items, errors)"
                f" VALUES ({pk}, '{rule}', 'high', '{status}', :items, '[]')"
            )
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        for statement in rows:
            items = b"[]" if engine.dialect.name == "postgresql" else "[]"
            connection.execute(sa.text(statement), {"now": NOW, "hash": "0" * 64, "items": items})
    engine.dispose()


def in_effect_at(db_url: str, *pks: int) -> dict[int, list[tuple[str, str]]]:
    database = open_database(db_url)
    try:
        with database.session() as session:
            found: dict[int, list[tuple[str, str]]] = {pk: [] for pk in pks}
            query = in_effect(list(pks), RuleResultRow.rule_id, RuleResultRow.status)
            for at, rule_id, status in session.execute(query):
                found[at].append((rule_id, status))
            return found
    finally:
        database.engine.dispose()


def test_populated_0005_upgrades_and_downgrades(db_url: str) -> None:
    upgrade(db_url, "0005")
    populate_0005(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert in_effect_at(db_url, 1, 2) == {
        1: [("R-A", "fail"), ("R-B", "pass")],
        2: [("R-A", "pass"), ("R-B", "pass")],
    }
    # A new report: the old rows are not in effect, so it stores its whole set; the
    # next one stores only R-A, whose status changed.
    database = open_database(db_url)
    try:
        for pk, status in ((3, Status.PASS), (4, Status.FAIL)):
            with database.write() as session:
                session.add(
                    Report(
                        id=pk,
                        report_id=f"r-{pk}",
                        host_id=1,
                        seq=pk,
                        collected_at=datetime.now(UTC),
                        received_at=datetime.now(UTC),
                        agent_version="0.1",
                        facts="{}",
                        domains={},
                    )
                )
                session.flush()
                results = [
                    RuleResult("R-A", Severity.HIGH, status, TITLE),
                    RuleResult("R-B", Severity.HIGH, Status.PASS, TITLE),
                ]
                written = write_results(session, 1, pk, results, chain=True)
                assert written == (2 if pk == 3 else 1)
    finally:
        database.engine.dispose()
    assert in_effect_at(db_url, 3, 4)[4] == [("R-A", "fail"), ("R-B", "pass")]
    command.downgrade(alembic_config(db_url), "0005")
    assert current_revision(db_url) == "0005"
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT report_pk, rule_id, status FROM rule_results ORDER BY report_pk, rule_id"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        (1, "R-A", "fail"),
        (1, "R-B", "pass"),
        (2, "R-A", "pass"),
        (2, "R-B", "pass"),
        (3, "R-A", "pass"),
        (3, "R-B", "pass"),
        (4, "R-A", "fail"),
        (4, "R-B", "pass"),  # copied back from report 3, where it was stored
    ]
    upgrade(db_url)  # and up again over the downgraded rows
    assert in_effect_at(db_url, 4)[4] == [("R-A", "fail"), ("R-B", "pass")]
