"""HTML opened in Debian's headless Chromium, and the PDF it prints read back with
pdftotext: content, languages, formats, and hostile strings kept inert.

Chromium and pdftotext are real tools: on a developer machine without them these
tests skip; under CI=true they fail (tests.support.require).
"""

from __future__ import annotations

import html.parser
import json
import subprocess
from pathlib import Path

import pytest

from server.read.audit_views import AuditReport
from server.reports.pdf import chromium_command, chromium_path
from server.reports.render import Format, render_audit
from server.reports.text import CATALOGUE, Lang
from tests.support import require, require_tool

TIMEOUT = 120


class _Tags(html.parser.HTMLParser):
    """Every start tag and its attributes, and the page's visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def chromium() -> str:
    found = chromium_path()
    require(found is not None, "chromium is not installed (apt-get install chromium)")
    assert found is not None
    return found


def assert_no_connection(net_log: Path) -> None:
    """Chromium's own network log: no TCP connection attempted, no name resolved."""
    log = json.loads(net_log.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    events = [(names[e["type"]], e.get("params") or {}) for e in log["events"]]
    assert [p for name, p in events if name in {"TCP_CONNECT", "SSL_CONNECT"}] == []
    hosts = {
        p["host"] for name, p in events if name == "HOST_RESOLVER_MANAGER_REQUEST" and "host" in p
    }
    assert {h.split("://")[-1] for h in hosts} <= {"~notfound"}, hosts


def open_in_chromium(page: bytes, tmp_path: Path) -> tuple[str, str]:
    """(the DOM after Chromium loaded the page, Chromium's log); a screenshot is kept."""
    source = tmp_path / "audit.html"
    source.write_bytes(page)
    base = chromium_command(chromium(), tmp_path / "profile", "--enable-logging=stderr", "--v=0")
    net_log = tmp_path / "net-log.json"
    dom = subprocess.run(
        [*base, f"--log-net-log={net_log}", "--dump-dom", source.as_uri()],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    # Kept under the test's tmp dir: CI collects it as an artifact.
    shot = tmp_path / "audit.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1240,1754", source.as_uri()],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    assert_no_connection(net_log)
    return dom.stdout.decode("utf-8"), dom.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("lang", [Lang.VI, Lang.EN])
def test_html_in_chromium(province: AuditReport, lang: Lang, tmp_path: Path) -> None:
    page = render_audit(province, Format.HTML, lang)
    dom, log = open_in_chromium(page, tmp_path)
    tags = parse(dom)
    # The hostile hostname and process name are text, never elements or attributes.
    assert [t for t, _ in tags.tags if t in {"script", "img", "iframe", "object"}] == []
    assert all(not k.startswith("on") for _, attrs in tags.tags for k in attrs)
    text = "".join(tags.text)
    assert '=HYPERLINK("http://x")<script>alert("h")</script>\\u202eevil\\u0007' in text
    assert "<img src=x onerror=alert(1)>" in text
    assert "\u202e" not in dom
    # Self-contained: nothing to fetch (no src, href or url() in the page at all).
    assert all("src" not in attrs and "href" not in attrs for _, attrs in tags.tags)
    assert "url(" not in page.decode("utf-8")
    assert "CONSOLE" not in log, log
    # Per agency (3): findings by severity, score trend, requirement coverage.
    assert dom.count("<svg") == 9
    assert dom.count("<circle") >= 3  # at least the current score of each agency
    if lang is Lang.VI:
        assert "Hồ sơ đánh giá an toàn thông tin toàn tỉnh" in text
        assert "01/03/2026" in text  # first seen, dd/mm/yyyy
        assert "61,5 %" in text  # so-a's score 16/26, decimal comma
        assert "Không đạt" in text and "Chưa đánh giá" in text
        assert "2 / 3" in text  # so-a's rank among the three agencies
        assert "Miễn trừ còn hiệu lực và đã hết hạn" in text
        assert "31/12/2026" in text and "31/01/2026" in text  # waivers' expiry dates
        assert "CN=db01.so-a.gov.vn: 31/03/2026, còn 29 ngày" in text
        # app01's agent could not read its updates: said so, without English system text.
        assert "bản vá: không đủ quyền" in text and "Permission denied" not in text
        # No fixed English text in the Vietnamese document.
        leaked = [en for _vi, en in CATALOGUE.values() if len(en) > 3 and en in text]
        assert leaked == []
    else:
        assert "Province information security audit package" in text
        assert "2026-03-01" in text and "61.5 %" in text
        assert "Not met" in text and "Not assessed" in text
        assert "W-B-TELNET" in text and "2026-12-31" in text
        assert "updates: permission denied (apt: Permission denied)" in text
        assert "CN=db01.so-a.gov.vn: 2026-03-31, 29 days left" in text


def test_pdf_text_has_vietnamese_headings(province: AuditReport, tmp_path: Path) -> None:
    chromium()
    pdftotext = require_tool("pdftotext")
    pdf = render_audit(province, Format.PDF, Lang.VI)
    assert pdf.startswith(b"%PDF-")
    target = tmp_path / "audit.pdf"
    target.write_bytes(pdf)
    text = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(target), "-"],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.decode("utf-8")
    for heading in (
        "Hồ sơ đánh giá an toàn thông tin toàn tỉnh",
        "Việc cần làm ngay",
        "Phương pháp",
    ):
        assert heading in text
    assert "Sở Thông tin và Truyền thông" in text
