"""The audit's unmanaged LAN devices in every format: HTML (and its printed cut), the
PDF read back with pdftotext, XLSX and JSON. On discovery facts reported through the
real ingest service into a real SQLite database (tests/server/read/lan_fleet.py); a
hostile vendor string stays inert, and the Vietnamese page holds no English text of
the section."""

from __future__ import annotations

import io
import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from server.config import ServerConfig
from server.ingest.service import IngestService, limits_of
from server.read.audit import build_audit
from server.read.audit_views import AuditReport
from server.reports.html import render_html
from server.reports.render import Format, render_audit
from server.reports.text import CATALOGUE, Lang
from server.storage.database import Database
from tests.server.read import lan_fleet
from tests.server.read.lan_fleet import NAS_MAC
from tests.server.read.test_audit_lan import (
    HOSTILE_VENDOR,
    NOW,
    add_so_c,
    later_sweep,
    with_lan_pack,
)
from tests.server.reports.fleet import server_policy
from tests.server.reports.test_html_pdf import chromium
from tests.support import require_tool

LAN_KEYS = [k for k in CATALOGUE if k.startswith("lan")] + [
    "ip_addresses",
    "mac",
    "vendor",
    "open_ports",
    "risky",
    "last_seen",
    "seen_by",
]
ESCAPED_VENDOR = HOSTILE_VENDOR.replace("\u202e", "\\u202e")


@pytest.fixture
def report(sqlite_database: Database, sqlite_url: str) -> AuditReport:
    """so-a: two scanners, three unmanaged devices (a NAS with telnet and SMB, a
    printer, a camera with RDP and a hostile vendor); so-b: one; so-c: no sweep (one
    host does not sweep, one's sweep failed)."""
    policy = server_policy()
    service = IngestService(sqlite_database, policy, limits_of(ServerConfig(db_url=sqlite_url)))
    tokens = lan_fleet.build(service, sqlite_database)
    later_sweep(service, tokens["agent-scan"])
    add_so_c(service, sqlite_database)
    with sqlite_database.session() as session:
        return build_audit(
            session, with_lan_pack(policy), as_of=NOW, agency=None, stale_after_seconds=86400
        )


def _section(page: str, agency: str) -> str:
    """The LAN part of one agency's section of the (Vietnamese) page."""
    start = page.index(f"({agency})</h2>")
    end = page.index("</section>", start)
    return page[page.index("<h3>Thiết bị chưa được quản lý", start) : end]


def test_html_vietnamese_devices_escaped_and_no_english(report: AuditReport) -> None:
    page = render_html(report, Lang.VI).decode()
    so_a = _section(page, "so-a")
    assert "<h3>Thiết bị chưa được quản lý trong mạng nội bộ</h3>" in so_a
    assert "<td>Máy chủ dò tìm thiết bị</td><td>scan01, scan02</td>" in so_a
    assert "<td>Thiết bị phát hiện được</td><td>4</td>" in so_a
    assert "<td>Thiết bị được quản lý</td><td>1</td>" in so_a  # 10.0.0.1: scan01
    assert "<td>Thiết bị chưa được quản lý</td><td>3</td>" in so_a
    assert "<td>Thiết bị chưa được quản lý mở cổng rủi ro</td><td>2</td>" in so_a
    assert NAS_MAC in so_a and "19/11/2026" in so_a  # the NAS's first seen (scan02's), dd/mm/yyyy
    assert "23/tcp telnet (rủi ro: LAN-TELNET-OPEN)" in so_a
    # The hostile vendor: escaped, its RTL override made visible; no tag injected.
    assert "<script>" not in page and "\u202e" not in page
    assert (
        "=HYPERLINK(&quot;http://x&quot;)&lt;script&gt;alert(1)&lt;/script&gt;\\u202eAxis" in so_a
    )
    # so-c's host never swept: not assessed, no count of zero.
    so_c = _section(page, "so-c")
    assert "Không máy chủ nào dò tìm thiết bị trong mạng nội bộ: chưa đánh giá." in so_c
    assert "<td>0</td>" not in so_c
    assert "<p>Máy chủ dò tìm không thành công: scan-c</p>" in so_c
    # No English text of the section in the Vietnamese page (words of 4+ letters).
    for key in LAN_KEYS:
        english = CATALOGUE[key][1]
        assert english not in page, key
    words = {w.lower() for k in LAN_KEYS for w in re.findall(r"[A-Za-z]{4,}", CATALOGUE[k][1])}
    visible = re.sub(r"<[^>]+>", " ", so_a + so_c)
    visible = visible.replace(ESCAPED_VENDOR.replace("<", "&lt;").replace(">", "&gt;"), "")
    visible = re.sub(r"LAN-[A-Z-]+", "", visible)  # rule ids: data, not text
    found = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", visible)}
    # What remains English-looking is data: rule ids, service guesses, host labels.
    assert found & words == set(), found & words


def test_html_english(report: AuditReport) -> None:
    page = render_html(report, Lang.EN).decode()
    assert "<h3>Unmanaged devices on the local network</h3>" in page
    assert "No host sweeps the local network (no discovery): not assessed." in page
    assert "2026-11-19" in page


def test_printed_cut_keeps_risky_devices_first(report: AuditReport) -> None:
    page = render_html(report, Lang.VI, detail_rows=2).decode()
    so_a = _section(page, "so-a")
    assert "Bản in liệt kê 2 trên 3 thiết bị chưa được quản lý" in so_a
    assert "10.0.0.50" in so_a and "10.0.0.70" in so_a  # both risky
    assert "10.0.0.60" not in so_a  # the printer: no risky port, cut in print
    assert "10.0.0.60" in _section(render_html(report, Lang.VI).decode(), "so-a")


def test_pdf_has_the_section_in_vietnamese(report: AuditReport, tmp_path: Path) -> None:
    chromium()
    pdftotext = require_tool("pdftotext")
    target = tmp_path / "audit.pdf"
    target.write_bytes(render_audit(report, Format.PDF, Lang.VI))
    text = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(target), "-"], capture_output=True, timeout=120, check=True
    ).stdout.decode("utf-8")
    flat = " ".join(text.split())  # table cells wrap anywhere in print
    assert "Thiết bị chưa được quản lý trong mạng nội bộ" in flat
    assert "Thiết bị chưa được quản lý mở cổng rủi ro 2" in flat
    assert "Không máy chủ nào dò tìm thiết bị trong mạng nội bộ: chưa đánh giá." in flat
    assert "445/tcp microsoft-ds (rủi ro: LAN-SMB-OPEN)" in flat


def test_xlsx_devices_sheet_typed_and_safe(report: AuditReport) -> None:
    workbook = load_workbook(io.BytesIO(render_audit(report, Format.XLSX, Lang.VI)))
    sheet = workbook["Thiết bị chưa được quản lý"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Cơ quan", "Tình trạng dò tìm", "Địa chỉ IP", "Địa chỉ MAC")
    body = rows[1:]
    assert [(r[0], r[2]) for r in body] == [
        ("so-a", "10.0.0.50"),
        ("so-a", "10.0.0.60"),
        ("so-a", "10.0.0.70"),
        ("so-b", "10.0.0.50"),
        ("so-c", None),
    ]
    nas = body[0]
    assert nas[6] == "23 LAN-TELNET-OPEN, 445 LAN-SMB-OPEN"
    assert isinstance(nas[7], datetime) and nas[7] == datetime(2026, 11, 19, 8, 0)
    assert body[2][4] == "'" + ESCAPED_VENDOR  # a formula start: kept as text
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    assert body[4][1] == "Chưa đánh giá" and body[4][3:10] == (None,) * 7
    assert body[4][10] == "scan-c" and nas[10] is None  # so-c's failed sweep named


def test_json_counts_null_when_not_assessed(report: AuditReport) -> None:
    data = json.loads(render_audit(report, Format.JSON, Lang.VI))
    lans = {a["standing"]["agency"]: a["lan"] for a in data["agencies"]}
    assert (lans["so-a"]["unmanaged"], lans["so-b"]["unmanaged"]) == (3, 1)
    assert lans["so-c"] == {
        "assessed": False,
        "sweeping_hosts": [],
        "failed_sweeps": ["scan-c"],
        "devices": None,
        "managed": None,
        "unmanaged": None,
        "risky_unmanaged": None,
        "unmanaged_devices": [],
    }
    assert lans["so-a"]["unmanaged_devices"][2]["vendor"] == HOSTILE_VENDOR
