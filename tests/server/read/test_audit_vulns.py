"""The audit's vulnerability section on a real database (SQLite and PostgreSQL): the
facts recorded on a Debian 12 machine ingested through the real ingest service,
matched against the feed samples of tests/data/server/vulns imported into a real
store. An audit as of a past date reads the packages installed then; a missing or
stale store is said, never counted as zero; the HTML (vi/en), XLSX and PDF renderings;
the real `canhgac-server audit` command and the audit API of a running collector."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from openpyxl import load_workbook

from rules.language.loader import builtin_packs_dir
from server.auth.api_tokens import create_api_token
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.ingest.service import IngestService, limits_of
from server.metrics.hoststate import HostStateCache
from server.read.audit import AuditPolicy, build_audit
from server.read.audit_views import AgencyAudit, AuditReport, VulnHostProblem, VulnStatus
from server.reports.html import render_html
from server.reports.render import Format, cut_off, render_audit
from server.reports.text import CATALOGUE, Lang
from server.storage.database import Database
from tests.server.conftest import LiveServers
from tests.server.helpers import body_of, iso, new_token
from tests.server.reports.test_html_pdf import chromium
from tests.server.vulns.conftest import import_samples, recorded_facts, with_kernels
from tests.support import require_tool

NOW = datetime(2026, 12, 15, 8, 0, tzinfo=UTC)
BEFORE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # openssl vulnerable
AFTER = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)  # openssl upgraded
PACK = builtin_packs_dir() / "vulnerabilities.yaml"
HOSTILE = "<b>x</b>\u202eevil"
CLI = Path(sys.executable).with_name("canhgac-server")


def _policy(store: Path, max_age_days: float = 30) -> ServerPolicy:
    config = ServerConfig(rules=(PACK,), vulndb_path=store, vulndb_max_age_days=max_age_days)
    return load_server_policy(config)


def _report(
    service: IngestService, token: str, agent: str, seq: int, at: datetime, facts: dict[str, Any]
) -> None:
    facts.update(
        agent_id=agent,
        seq=seq,
        collected_at=iso(at),
        report_id=f"00000000-0000-4000-8000-{abs(hash(agent)) % 10**6:06d}{seq:06d}",
    )
    service.ingest(service.authenticate(token), body_of(facts), None)


def _debian(hostname: str, openssl: str | None = None) -> dict[str, Any]:
    facts = with_kernels(recorded_facts())
    facts["host"]["hostname"] = hostname
    for package in facts["packages"]["items"]:
        if openssl and package.get("source") == "openssl":
            package["version"] = package["source_version"] = openssl
    return facts


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "vulndb.sqlite"
    import_samples(path, ("debian-tracker.json", "kev.json", "epss.csv"))
    return path


@pytest.fixture
def fleet(database: Database, store: Path) -> ServerPolicy:
    """so-a: web01 (openssl upgraded between BEFORE and AFTER) and old01, an Ubuntu 22.04
    host no imported feed covers; so-b: db01, never upgraded."""
    policy = _policy(store)
    service = IngestService(
        database,
        policy,
        limits_of(ServerConfig()),
        on_commit=HostStateCache().put,
        clock=lambda: NOW,
    )
    web, old_token = new_token(database, "so-a"), new_token(database, "so-a")
    _report(service, web, "agent-web", 1, BEFORE, _debian("web01"))
    _report(service, web, "agent-web", 2, AFTER, _debian("web01", openssl="3.0.23-1~deb12u1"))
    old = _debian("old01")
    old["host"]["os"].update(id="ubuntu", version_codename="jammy", version_id="22.04")
    _report(service, old_token, "agent-old", 1, BEFORE, old)
    _report(service, new_token(database, "so-b"), "agent-db", 1, BEFORE, _debian(HOSTILE))
    return policy


def _audit(database: Database, policy: ServerPolicy, day: date) -> dict[str, AgencyAudit]:
    return {a.standing.agency: a for a in _report_of(database, policy, day).agencies}


def _report_of(database: Database, policy: ServerPolicy, day: date) -> AuditReport:
    judged = AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights, policy.vulns)
    with database.session() as session:
        return build_audit(
            session, judged, as_of=cut_off(day, NOW), agency=None, stale_after_seconds=86400 * 30
        )


def _urgent(audit: AgencyAudit) -> set[tuple[str, str, str]]:
    return {(i.cve, i.package, i.state) for i in audit.vulnerabilities.urgent}


def test_past_and_present(database: Database, fleet: ServerPolicy) -> None:
    past = _audit(database, fleet, date(2026, 12, 5))
    section = past["so-a"].vulnerabilities
    assert section.status is VulnStatus.ASSESSED
    assert section.matched_hosts == ["web01"]
    assert [(u.host, u.problem) for u in section.unmatched_hosts] == [
        ("old01", VulnHostProblem.UNSUPPORTED)
    ]
    assert ("CVE-2099-1001", "openssl", "fix_available") in _urgent(past["so-a"])
    assert ("CVE-2099-1012", "linux", "fix_available") in _urgent(past["so-a"])
    openssl = next(i for i in section.urgent if i.cve == "CVE-2099-1001")
    assert openssl.kev and openssl.hosts == ["web01"]
    assert openssl.installed_version == "3.0.22-1~deb12u2"
    assert openssl.fix_since == date(2026, 11, 29)  # first seen by the import
    assert section.urgent[0].kev  # known exploited first
    counts = {c.severity: c for c in section.counts or []}
    assert section.items == sum(c.total for c in counts.values()) > 0
    assert counts["high"].fix_available >= 2
    assert section.kev_items is not None and section.kev_items >= 2
    assert [h.host for h in section.top_hosts] == ["web01"]
    assert section.top_hosts[0].kev >= 2
    assert [(f.name, f.age_days, f.stale) for f in section.feeds if f.name == "debian-tracker"] == [
        ("debian-tracker", 6, False)
    ]
    # Today web01 runs the fixed openssl: gone from its section; so-b's host still has it.
    today = _audit(database, fleet, date(2026, 12, 12))
    assert ("CVE-2099-1001", "openssl", "fix_available") not in _urgent(today["so-a"])
    assert ("CVE-2099-1012", "linux", "fix_available") in _urgent(today["so-a"])
    assert ("CVE-2099-1001", "openssl", "fix_available") in _urgent(today["so-b"])
    total_before = section.items or 0
    assert (today["so-a"].vulnerabilities.items or 0) < total_before


def test_stale_and_missing_store_are_not_zero(
    database: Database, fleet: ServerPolicy, store: Path, tmp_path: Path
) -> None:
    stale = _policy(store, max_age_days=3)
    section = _audit(database, stale, date(2026, 12, 5))["so-b"].vulnerabilities
    assert section.status is VulnStatus.STALE
    assert section.counts is None and section.items is None and section.kev_items is None
    assert section.urgent == [] and section.top_hosts == []
    assert [u.problem for u in section.unmatched_hosts] == [VulnHostProblem.STALE]
    tracker = next(f for f in section.feeds if f.name == "debian-tracker")
    assert tracker.stale and tracker.age_days == 6
    missing = _policy(tmp_path / "absent.sqlite")
    for audit in _audit(database, missing, date(2026, 12, 5)).values():
        assert audit.vulnerabilities.status is VulnStatus.NO_STORE
        assert audit.vulnerabilities.items is None and audit.vulnerabilities.feeds == []


def _section(page: str, agency: str) -> str:
    """The vulnerability part of one agency's section of the page (vi or en)."""
    start = page.index(f"({agency})</h2>")
    end = page.index("</section>", start)
    titles = [page.find(f"<h3>{title}", start) for title in CATALOGUE["vuln"]]
    return page[max(titles) : end]


VULN_KEYS = [k for k in CATALOGUE if k.startswith(("vuln", "vstate.", "vsev."))]


def test_html_vietnamese_and_english(database: Database, fleet: ServerPolicy) -> None:
    report = _report_of(database, fleet, date(2026, 12, 5))
    page = render_html(report, Lang.VI).decode()
    so_a, so_b = _section(page, "so-a"), _section(page, "so-b")
    assert "<h3>Lỗ hổng đã biết của các gói phần mềm</h3>" in so_a
    assert "cơ sở dữ liệu lỗ hổng HIỆN TẠI" in so_a
    assert "3.0.22-1~deb12u2 → 3.0.23-1~deb12u1" in so_a
    assert "29/11/2026" in so_a  # fix first seen, dd/mm/yyyy
    assert "old01 (không có nguồn dữ liệu cho phiên bản hệ điều hành)" in so_a
    # The hostile hostname: escaped, its RTL override made visible.
    assert "\u202e" not in page and "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;\\u202eevil" in so_b
    words = {w.lower() for k in VULN_KEYS for w in re.findall(r"[A-Za-z]{4,}", CATALOGUE[k][1])}
    visible = re.sub(r"<[^>]+>", " ", so_a)
    # Data (CVE ids, feed names) and CISA, a proper name both languages use.
    visible = re.sub(r"CVE-\d+-\d+|debian-tracker|CISA", "", visible)
    found = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", visible)}
    assert found & words == set(), found & words
    english = render_html(report, Lang.EN).decode()
    assert "<h3>Known vulnerabilities of packages</h3>" in english
    assert "2026-11-29" in english and "old01 (no feed covers its release)" in english


def test_html_not_assessed_and_printed_cut(
    database: Database, fleet: ServerPolicy, store: Path
) -> None:
    stale = _report_of(database, _policy(store, 3), date(2026, 12, 5))
    page = render_html(stale, Lang.VI).decode()
    so_b = _section(page, "so-b")
    assert "Dữ liệu lỗ hổng đã cũ (quá 3 ngày): chưa đánh giá" in so_b
    assert "Số mục lỗ hổng" not in so_b  # no count at all, never "0"
    report = _report_of(database, fleet, date(2026, 12, 5))
    urgent = len(report.agencies[0].vulnerabilities.urgent)
    assert urgent >= 2
    cut = _section(render_html(report, Lang.VI, detail_rows=1).decode(), "so-a")
    assert f"Bản in liệt kê 1 trên {urgent} lỗ hổng" in cut
    assert cut.count("CVE-2099-") < _section(render_html(report, Lang.VI).decode(), "so-a").count(
        "CVE-2099-"
    )


def test_xlsx_sheet(database: Database, fleet: ServerPolicy, tmp_path: Path) -> None:
    report = _report_of(database, fleet, date(2026, 12, 5))
    book = load_workbook(io.BytesIO(render_audit(report, Format.XLSX, Lang.VI)))
    sheet = book["Mã lỗ hổng"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Cơ quan", "Trạng thái", "Mã lỗ hổng")
    openssl = [r for r in rows if r[0] == "so-b" and r[2] == "CVE-2099-1001"]
    assert openssl and openssl[0][1] == "Đã có bản sửa" and openssl[0][6] == "Có"
    assert openssl[0][8] == datetime(2026, 11, 29)
    assert openssl[0][7] == "<b>x</b>\\u202eevil"  # inert in a cell: no override
    missing = _report_of(database, _policy(tmp_path / "absent.sqlite"), date(2026, 12, 5))
    book = load_workbook(io.BytesIO(render_audit(missing, Format.XLSX, Lang.VI)))
    rows = list(book["Mã lỗ hổng"].iter_rows(values_only=True))
    assert rows[1][1] == "Chưa nhập cơ sở dữ liệu lỗ hổng (hoặc không đọc được): chưa đánh giá."


def test_the_audit_command_reads_the_configured_store(
    database: Database, fleet: ServerPolicy, store: Path, db_url: str, tmp_path: Path
) -> None:
    """`canhgac-server audit` (a real process) matches against the configured store."""
    config = tmp_path / "server.yaml"
    config.write_text(
        json.dumps({"server": {"rules": [str(PACK)], "vulndb_path": str(store)}}), "utf-8"
    )
    output = tmp_path / "audit.json"
    what = ["--agency", "so-b", "--as-of", "2026-12-05", "--format", "json"]
    done = subprocess.run(
        [
            str(CLI),
            "audit",
            "--config",
            str(config),
            "--db",
            db_url,
            *what,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    section = json.loads(output.read_text("utf-8"))["agencies"][0]["vulnerabilities"]
    assert section["status"] == "assessed" and section["matched_hosts"] == [HOSTILE]
    assert {"CVE-2099-1001", "CVE-2099-1012"} <= {i["cve"] for i in section["urgent"]}


def test_pdf_has_the_section_in_vietnamese(
    database: Database, fleet: ServerPolicy, tmp_path: Path
) -> None:
    chromium()
    pdftotext = require_tool("pdftotext")
    target = tmp_path / "audit.pdf"
    report = _report_of(database, fleet, date(2026, 12, 5))
    target.write_bytes(render_audit(report, Format.PDF, Lang.VI))
    text = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(target), "-"], capture_output=True, timeout=120, check=True
    ).stdout.decode("utf-8")
    flat = " ".join(text.split())  # table cells wrap anywhere in print
    assert "Lỗ hổng đã biết của các gói phần mềm" in flat
    assert "Máy chủ có nhiều lỗ hổng đã có bản sửa nhất" in flat
    assert "CVE-2099-1001" in flat and "29/11/2026" in flat


def test_the_audit_api_reads_the_running_collectors_store(
    live_servers: LiveServers, database: Database, store: Path
) -> None:
    """GET /api/v1/audit/json over real HTTP: the running collector's store, and an
    agency-scoped token sees its own agency's section only."""
    # A long max age: the samples are dated 29/11/2026 and this runs on the real clock.
    config = ServerConfig(rules=(PACK,), vulndb_path=store, vulndb_max_age_days=3650)
    server = live_servers.start(policy=load_server_policy(config))
    for agency, agent in (("so-a", "web-a"), ("so-b", "web-b")):
        facts = with_kernels(recorded_facts())
        facts.update(
            agent_id=agent, seq=1, report_id=str(uuid.uuid4()), collected_at=iso(utc_now())
        )
        answer = requests.post(
            f"{server.url}/api/v1/reports",
            data=body_of(facts),
            headers={"Authorization": f"Bearer {new_token(database, agency)}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
    with database.write() as session:
        _, scoped = create_api_token(session, "IT of so-b", "viewer", utc_now, "so-b")
    answer = requests.get(
        f"{server.url}/api/v1/audit/json/agencies/so-b",
        headers={"Authorization": f"Bearer {scoped}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    (own,) = answer.json()["agencies"]
    section = own["vulnerabilities"]
    assert section["status"] == "assessed" and section["matched_hosts"] == ["debian-vuln-01"]
    assert {(i["cve"], i["package"]) for i in section["urgent"] if i["kev"]} == {
        ("CVE-2099-1001", "openssl"),
        ("CVE-2099-1012", "linux"),
    }
    refused = requests.get(
        f"{server.url}/api/v1/audit/json/agencies/so-a",
        headers={"Authorization": f"Bearer {scoped}"},
        timeout=120,
    )
    assert refused.status_code == 404
