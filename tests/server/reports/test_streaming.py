"""Documents written as the database is read (an outline and a streamed detail) are
the same as the documents of the whole model, on a fleet stored through the real
ingest service in real SQLite and PostgreSQL databases.

The pages and chunks are made tiny here (two hosts, two findings, one row per chunk)
so that every boundary is crossed on a small fleet: the same code paths as a
province's. How much memory streaming saves is measured in bench/audit_report.py,
not asserted here.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import load_workbook

from server.read import audit_detail, audit_findings, audit_states
from server.read.audit import audit_outline, build_audit
from server.read.audit_views import AuditReport
from server.reports import html, render, tabular
from server.reports.render import Format, render_audit, stream_audit
from server.reports.tabular import Table
from server.reports.text import Lang
from server.storage.database import Database
from tests.server.helpers import telnet
from tests.server.reports.fleet import BETWEEN, T1, Fleet, audit_policy, server_policy

STALE = 86400


@pytest.fixture
def fleet(database: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """The tests' province and more hosts and findings in so-a, with tiny pages."""
    monkeypatch.setattr(audit_states, "CHUNK", 2)
    monkeypatch.setattr(audit_detail, "CHUNK", 2)
    monkeypatch.setattr(audit_findings, "PAGE", 2)
    monkeypatch.setattr(render, "_JSON_ITEMS", 1)
    monkeypatch.setattr(tabular, "_CSV_ROWS", 1)
    monkeypatch.setattr(html, "_PIECES", 1)
    built = Fleet(database, server_policy(), db_url)
    built.first_period()
    for n in range(4):
        listening = [telnet(f"10.0.{n}.{i}") for i in range(1, n + 2)]
        # Labels out of insertion order, one shared by two hosts (ties by host id).
        label = "web02" if n == 3 else f"app-{3 - n}"
        built.report("so-a", f"agent-more-{n}", label, collected_at=T1, listening=listening)
    return built


def _whole(fleet: Fleet, agency: str | None) -> AuditReport:
    with fleet.database.session() as session:
        return build_audit(
            session,
            audit_policy(server_policy()),
            as_of=BETWEEN,
            agency=agency,
            stale_after_seconds=STALE,
        )


def _streamed(
    fleet: Fleet, agency: str | None, fmt: Format, lang: Lang, table: Table = Table.FINDINGS
) -> list[bytes]:
    with fleet.database.session() as session:
        outline, detail = audit_outline(
            session,
            audit_policy(server_policy()),
            as_of=BETWEEN,
            agency=agency,
            stale_after_seconds=STALE,
        )
        # The outline holds no finding and no host: the renderer reads them.
        assert all(a.findings == [] and a.hosts == [] for a in outline.agencies)
        return list(stream_audit(outline, fmt, lang, detail, table=table))


def _cells(data: bytes) -> Iterator[list[Any]]:
    workbook = load_workbook(io.BytesIO(data))
    for sheet in workbook.worksheets:
        yield [sheet.title]
        yield from (list(row) for row in sheet.iter_rows(values_only=True))


@pytest.mark.parametrize("agency", ["so-a", None])
def test_streamed_documents_are_the_whole_models(fleet: Fleet, agency: str | None) -> None:
    whole = _whole(fleet, agency)
    so_a = next(a for a in whole.agencies if a.standing.agency == "so-a")
    assert len(so_a.findings) == 11 and len(so_a.hosts) == 6  # 1+1+2+3+4 telnet; hosts
    # The database's order is the documented one (code point order of the texts).
    key = [(-f.severity.rank, f.host, f.rule_id, f.item_key) for f in so_a.findings]
    assert key == sorted(key)
    assert [h.host for h in so_a.hosts] == ["app-1", "app-2", "app-3", "db01", "web01", "web02"]
    for lang in Lang:
        for fmt in (Format.HTML, Format.JSON):
            chunks = _streamed(fleet, agency, fmt, lang)
            assert b"".join(chunks) == render_audit(whole, fmt, lang), (fmt, lang)
            assert len(chunks) > 10  # written a piece at a time, not at once
        for table in Table:
            chunks = _streamed(fleet, agency, Format.CSV, lang, table)
            assert b"".join(chunks) == render_audit(whole, Format.CSV, lang, table=table)
        streamed = b"".join(_streamed(fleet, agency, Format.XLSX, lang))
        assert list(_cells(streamed)) == list(_cells(render_audit(whole, Format.XLSX, lang)))
    # The JSON is the model's own dump, byte for byte.
    assert render_audit(whole, Format.JSON, Lang.VI) == render.render_json(whole)


def test_streamed_printed_page_is_the_whole_models(fleet: Fleet) -> None:
    """The PDF's page (detail cut to 2 rows: findings summed up by rule, the hosts
    with the lowest scores) from the stream equals the one from the whole model."""
    whole = _whole(fleet, "so-a")
    with fleet.database.session() as session:
        outline, detail = audit_outline(
            session,
            audit_policy(server_policy()),
            as_of=BETWEEN,
            agency="so-a",
            stale_after_seconds=STALE,
        )
        for lang in Lang:
            streamed = html.render_html(outline, lang, detail=detail, detail_rows=2)
            page = html.render_html(whole, lang, detail_rows=2)
            assert streamed == page
            assert "trên 11 phát hiện" in page.decode() or "of the 11 findings" in page.decode()
