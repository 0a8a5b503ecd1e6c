"""The package's tables as CSV files (hosts, devices, vulnerabilities beside the
findings) and each host's security level in every format that lists hosts, on a
fleet stored through the real ingest service (SQLite; levels from a real scopes
file). `--table` and `table=` end to end: test_api_cli.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.read.audit import build_audit
from server.read.audit_views import AuditReport
from server.reports.html import render_html
from server.reports.render import Format, render_audit
from server.reports.tabular import Table
from server.reports.text import Lang
from server.storage.database import Database
from tests.server.helpers import RULES_DIR
from tests.server.reports.fleet import BETWEEN, FRAMEWORK, HOSTILE_HOST, T1, Fleet, audit_policy

# so-a's web01 at level 2, db01 at 3, so-b at 3, so-x undeclared (the file says so).
SCOPES = Path(__file__).resolve().parents[1] / "read" / "data" / "levels-scopes.yaml"
ESCAPED_HOST = "'" + HOSTILE_HOST.replace("\u202e", "\\u202e").replace("\x07", "\\u0007")


@pytest.fixture
def leveled(sqlite_database: Database, sqlite_url: str) -> AuditReport:
    policy = load_server_policy(
        ServerConfig(rules=(RULES_DIR,), frameworks=(FRAMEWORK,), scopes=(SCOPES,))
    )
    Fleet(sqlite_database, policy, sqlite_url).first_period()
    with sqlite_database.session() as session:
        return build_audit(
            session, audit_policy(policy), as_of=BETWEEN, agency=None, stale_after_seconds=86400
        )


def _csv(report: AuditReport, lang: Lang, table: Table) -> list[list[str]]:
    data = render_audit(report, Format.CSV, lang, table=table)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: spreadsheets read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_hosts_csv_levels_unknown_empty_and_safe(leveled: AuditReport) -> None:
    header, *rows = _csv(leveled, Lang.VI, Table.HOSTS)
    assert header[:4] == ["Cơ quan", "Máy chủ", "Cấp độ an toàn hệ thống", "Báo cáo gần nhất"]
    by_host = {row[1]: row for row in rows}
    assert {h: by_host[h][2] for h in ("web01", "db01", "app01")} == {
        "web01": "2",
        "db01": "3",
        "app01": "3",
    }
    assert by_host[ESCAPED_HOST][2] == ""  # undeclared: empty, never 0
    assert by_host["db01"][3] == T1.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_host["app01"][6] == ""  # updates unread: unknown, not 0
    assert (by_host["db01"][6], by_host["db01"][9]) == ("1", "1")  # one update, one cert
    cells = [cell for row in rows for cell in row]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert not any(ch in c for c in cells for ch in ("\u202e", "\x07"))
    english = _csv(leveled, Lang.EN, Table.HOSTS)[0]
    assert english[:3] == ["Agency", "Host", "Security level"]


def test_devices_and_vulnerabilities_csv_say_not_assessed(leveled: AuditReport) -> None:
    """No host swept its LAN and no feed store is loaded: one row per agency saying
    so (never an empty table that reads as none)."""
    header, *rows = _csv(leveled, Lang.VI, Table.DEVICES)
    assert header[0] == "Cơ quan" and len(header) == 11
    assert [(r[0], r[1]) for r in rows] == [(a, "Chưa đánh giá") for a in ("so-b", "so-a", "so-x")]
    header, *rows = _csv(leveled, Lang.EN, Table.VULNERABILITIES)
    assert header[:3] == ["Agency", "Status", "CVE"]
    assert [r[0] for r in rows] == ["so-b", "so-a", "so-x"]
    assert all(r[1] and not any(r[2:]) for r in rows)
    # The same rows as the XLSX's sheets.
    workbook = load_workbook(io.BytesIO(render_audit(leveled, Format.XLSX, Lang.EN)))
    sheet = list(workbook.worksheets[3].iter_rows(values_only=True))
    assert [["" if c is None else str(c) for c in r] for r in sheet[1:]] == rows


def test_html_and_json_hosts_have_their_level(leveled: AuditReport) -> None:
    so_a = next(a for a in leveled.agencies if a.standing.agency == "so-a")
    vi = render_html(leveled.model_copy(update={"agencies": [so_a]}), Lang.VI).decode()
    assert "<th>Cấp độ an toàn hệ thống</th>" in vi
    assert "<td>db01</td><td>3</td>" in vi and "<td>web01</td><td>2</td>" in vi
    en = render_html(leveled, Lang.EN).decode()
    assert "<th>Security level</th>" in en
    assert "</td><td>Unknown</td>" in en  # so-x's host: undeclared
    # The printed page keeps the column.
    assert "<td>web01</td><td>2</td>" in render_html(leveled, Lang.VI, detail_rows=1).decode()
    data = json.loads(render_audit(leveled, Format.JSON, Lang.VI))
    levels = {h["host"]: h["security_level"] for a in data["agencies"] for h in a["hosts"]}
    assert levels["db01"] == 3 and levels[HOSTILE_HOST] is None
