"""CSV and XLSX: one row per finding, typed cells, formulas never evaluated."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from openpyxl import load_workbook

from server.read.audit_views import AuditReport
from server.reports.render import Format, render_audit
from server.reports.tabular import safe_cell
from server.reports.text import Lang
from tests.server.reports.fleet import HOSTILE_HOST, HOSTILE_PROCESS, T1


def test_safe_cell_prefixes_every_formula_start() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("web01") == "web01"


def test_csv_rows_bom_and_injection(province: AuditReport) -> None:
    data = render_audit(province, Format.CSV, Lang.VI)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, rows = table[0], table[1:]
    assert header[:3] == ["Cơ quan", "Máy chủ", "Luật"]
    # web01 (so-a) and the hostile host (so-x) fail telnet between the periods.
    assert sorted(row[0] for row in rows) == ["so-a", "so-x"]
    evil = next(row for row in rows if row[0] == "so-x")
    assert evil[3] == "Nghiêm trọng"
    assert evil[6] == T1.strftime("%Y-%m-%dT%H:%M:%SZ")
    # No cell begins with a formula character; the RTL override and BEL are escaped.
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)
    assert evil[1].startswith("'=HYPERLINK") and "\\u202e" in evil[1] and "\\u0007" in evil[1]
    assert "\u202e" not in data.decode("utf-8") and "\x07" not in data.decode("utf-8")
    assert HOSTILE_PROCESS in evil[9]


def test_csv_english(province: AuditReport) -> None:
    text = render_audit(province, Format.CSV, Lang.EN).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Agency,Host,Rule,Severity,Status")
    assert ",Critical,Open," in text


def test_xlsx_typed_cells_and_no_formula(province: AuditReport) -> None:
    data = render_audit(province, Format.XLSX, Lang.VI)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Cơ quan"
    body = rows[1:]
    assert len(body) == 2
    for row in body:
        assert isinstance(row[6], datetime) and row[6] == T1.replace(tzinfo=None)
        assert isinstance(row[7], float)
    # openpyxl reads a formula cell back as its "=..." text: none may start so.
    cells = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    hostile = next(row for row in body if row[0] == "so-x")
    escaped = HOSTILE_HOST.replace("\u202e", "\\u202e").replace("\x07", "\\u0007")
    assert hostile[1] == "'" + escaped
    assert str(hostile[9]).startswith("{")


def test_xlsx_hosts_sheet_typed_unknown_empty_and_safe(province: AuditReport) -> None:
    """Every host's state (what the printed document cuts) on a second sheet."""
    workbook = load_workbook(io.BytesIO(render_audit(province, Format.XLSX, Lang.VI)))
    assert workbook.sheetnames[:2] == ["Phát hiện theo mức độ", "Tình trạng từng máy chủ"]
    sheet = workbook["Tình trạng từng máy chủ"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Cơ quan", "Máy chủ", "Cấp độ an toàn hệ thống")
    by_host = {row[1]: row for row in rows[1:]}
    assert len(by_host) == 4
    db01 = by_host["db01"]
    assert db01[0] == "so-a" and db01[2] is None  # no level declared: empty, not 0
    assert db01[3] == T1.replace(tzinfo=None) and isinstance(db01[3], datetime)
    assert (db01[6], db01[7], db01[8], db01[9]) == (1, datetime(2026, 2, 20, 8, 0), "Có", 1)
    app01 = by_host["app01"]
    # updates unread: unknown count and reboot are empty cells, the reason in Vietnamese
    assert (app01[6], app01[8]) == (None, None)
    assert app01[11] == "bản vá: không đủ quyền, chứng thư số: không có trong báo cáo"
    assert isinstance(by_host["web01"][5], float) and by_host["web01"][10] == 1
    escaped = HOSTILE_HOST.replace("\u202e", "\\u202e").replace("\x07", "\\u0007")
    assert "'" + escaped in by_host
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    english = load_workbook(io.BytesIO(render_audit(province, Format.XLSX, Lang.EN)))
    assert english.sheetnames[1] == "State of each host"
    header = next(iter(english["State of each host"].iter_rows(values_only=True)))
    assert header[2] == "Security level"
