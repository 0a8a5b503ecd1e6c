"""The daemon's log: one line per event, text or JSON, hostile strings escaped; its
messages in Vietnamese with a decimal comma and in English."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from agent.output.events import EventLog, Level, LogFormat
from agent.output.messages import daemon_line, dropped_line, kept_line, quarantined_line

NOW = datetime(2026, 3, 9, 1, 2, 3, tzinfo=UTC)
HOSTILE = "bad\nforged 2026-01-01T00:00:00Z info delivered: ok\x1b[2J"


def test_text_is_one_escaped_line_per_event() -> None:
    out = io.StringIO()
    log = EventLog(out, LogFormat.TEXT, clock=lambda: NOW)
    log.event(Level.ERROR, "cycle_failed", HOSTILE)
    log.event(Level.INFO, "delivered", "report r-1: accepted")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == (
        "2026-03-09T01:02:03Z error cycle_failed: bad\\x0aforged 2026-01-01T00:00:00Z info"
        " delivered: ok\\x1b[2J"
    )
    assert lines[1] == "2026-03-09T01:02:03Z info delivered: report r-1: accepted"


def test_json_lines_carry_the_event_fields() -> None:
    out = io.StringIO()
    log = EventLog(out, LogFormat.JSON, clock=lambda: NOW)
    log.event(Level.WARNING, "dropped", HOSTILE + " chứng thư số", count=3, time="spoofed")
    (line,) = out.getvalue().splitlines()
    assert line.isascii()
    record = json.loads(line)
    assert record == {
        "time": "2026-03-09T01:02:03Z",  # a field cannot replace the envelope's own
        "level": "warning",
        "event": "dropped",
        "message": HOSTILE + " chứng thư số",
        "count": 3,
    }


def test_daemon_messages_in_both_languages() -> None:
    assert daemon_line("started", "vi", interval=2.5, first=0.25) == (
        "tác tử bắt đầu chạy nền: thu thập mỗi 2,5 giây, lần đầu sau 0,2 giây"
    )
    assert daemon_line("started", "en", interval=900.0, first=3.0) == (
        "agent daemon started: collecting every 900 s, first in 3 s"
    )
    assert kept_line(4, 12.0, "vi") == (
        "báo cáo được giữ lại trong hàng đợi (4 báo cáo đang chờ); thử lại sau 12 giây"
    )
    assert kept_line(4, None, "en") == "the report is kept in the spool (4 waiting)"
    assert "đã bỏ 2 báo cáo cũ nhất" in dropped_line(2, "vi")
    assert quarantined_line("x.json.gz", "HTTP 413", "vi") == (
        "báo cáo x.json.gz được chuyển vào thư mục cách ly: HTTP 413"
    )
