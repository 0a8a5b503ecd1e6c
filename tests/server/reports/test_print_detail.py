"""The printed (PDF) audit lists the detail that needs attention first and says where
the rest is; the HTML keeps every finding and host. On a fleet stored through the
real ingest service in a real SQLite database; the PDF printed by Debian's headless
Chromium and read back with pdftotext."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from server.read.audit import build_audit
from server.read.audit_views import AuditReport
from server.reports import render
from server.reports.html import render_html
from server.reports.render import Format, render_audit
from server.reports.text import Lang
from server.storage.database import Database
from tests.server.helpers import telnet
from tests.server.reports.fleet import BETWEEN, T1, Fleet, audit_policy, server_policy
from tests.server.reports.test_html_pdf import chromium
from tests.support import require_tool


@pytest.fixture
def so_a(sqlite_database: Database, sqlite_url: str) -> AuditReport:
    """so-a: web01 (one telnet finding), db01 (clean), web02 (two telnet findings)."""
    policy = server_policy()
    fleet = Fleet(sqlite_database, policy, sqlite_url)
    fleet.first_period()
    two = [telnet("10.0.0.7"), telnet("10.0.0.8")]
    fleet.report("so-a", "agent-web2", "web02", collected_at=T1, listening=two)
    with sqlite_database.session() as session:
        return build_audit(
            session, audit_policy(policy), as_of=BETWEEN, agency="so-a", stale_after_seconds=86400
        )


def _items(page: str) -> list[str]:
    return re.findall(r"<td>(tcp/[0-9.]+:23)</td>", page)  # item cells of findings


def test_html_lists_everything(so_a: AuditReport) -> None:
    page = render_html(so_a, Lang.VI).decode()
    assert sorted(_items(page)) == ["tcp/0.0.0.0:23", "tcp/10.0.0.7:23", "tcp/10.0.0.8:23"]
    assert "Bản in liệt kê" not in page
    assert all(f"<td>{h}</td>" in page for h in ("web01", "web02", "db01"))


def test_printed_detail_is_capped_with_a_summary_and_where_the_rest_is(
    so_a: AuditReport,
) -> None:
    vi = render_html(so_a, Lang.VI, detail_rows=2).decode()
    assert _items(vi) == ["tcp/0.0.0.0:23", "tcp/10.0.0.7:23"]  # the first two, in order
    assert "Bản in liệt kê 2 trên 3 phát hiện ở mức độ này" in vi
    assert "có trong tệp CSV, XLSX và HTML" in vi
    # every rule of the severity is summed up: TEST-TELNET, 2 hosts, 3 findings
    assert re.search(r"<td>TEST-TELNET — [^<]*</td><td>2</td><td>3</td><td>01/03/2026</td>", vi)
    # the two hosts with the lowest scores are listed, the clean one is not
    assert "Bản in liệt kê 2 trên 3 máy chủ" in vi
    assert "<td>web01</td>" in vi and "<td>web02</td>" in vi and "<td>db01</td>" not in vi
    en = render_html(so_a, Lang.EN, detail_rows=2).decode()
    assert "The printed document lists 2 of the 3 findings of this severity" in en
    assert "lists 2 of the 3 hosts, those with the lowest scores" in en
    # a cap the agency does not reach changes nothing
    assert render_html(so_a, Lang.VI, detail_rows=3) == render_html(so_a, Lang.VI)


def test_pdf_says_where_the_full_detail_is(
    so_a: AuditReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium()
    pdftotext = require_tool("pdftotext")
    monkeypatch.setattr(render, "PDF_DETAIL_ROWS", 2)  # the fleet is small; same code path
    target = tmp_path / "audit.pdf"
    target.write_bytes(render_audit(so_a, Format.PDF, Lang.VI))
    text = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(target), "-"], capture_output=True, timeout=120, check=True
    ).stdout.decode("utf-8")
    flat = " ".join(text.split())
    assert "Bản in liệt kê 2 trên 3 phát hiện ở mức độ này" in flat
    assert "Bản in liệt kê 2 trên 3 máy chủ" in flat
    assert "Telnet tại 10.0.0.7:23" in flat and "Telnet tại 10.0.0.8:23" not in flat
