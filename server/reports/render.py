"""One entry point for every audit format: `stream_audit(report, format, lang, detail)`
(and `render_audit`, the same bytes at once).

`report` is an outline and `detail` the stream of its findings and hosts
(`server.read.audit_detail`); without a detail, the report's own lists are read. CSV,
JSON and HTML are written as the detail is read, a chunk at a time; XLSX (openpyxl's
write-only mode) and PDF (Chromium prints a whole page, with `PDF_DETAIL_ROWS`) come
as one chunk.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from server.read.audit_detail import AuditDetail, ModelDetail
from server.read.audit_views import AuditReport
from server.reports.html import render_html, stream_html
from server.reports.pdf import html_to_pdf
from server.reports.tabular import Table, render_xlsx, stream_csv
from server.reports.text import Lang


class Format(StrEnum):
    HTML = "html"
    PDF = "pdf"
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


# Findings per agency and severity, and hosts per agency, listed in the PDF.
PDF_DETAIL_ROWS = 50

MEDIA_TYPES = {
    Format.HTML: "text/html; charset=utf-8",
    Format.PDF: "application/pdf",
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.JSON: "application/json",
}


# The days an audit may be asked for: no collector holds data from before 2000 (ingest
# refuses such clocks), and the bounds keep "a year before" and "the end of the day"
# inside what dates can represent.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


def cut_off(day: date | None, now: datetime) -> datetime:
    """The audit's cut-off: the end of `day` (UTC), or `now` when no day is given.

    A whole day, so `--as-of 2026-12-31` includes every observation of that day and
    the same command gives the same document on any later day.
    """
    if day is None:
        return now
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day} is outside {FIRST_DAY}..{LAST_DAY}")  # callers check
    return datetime.combine(day, time(0, 0), tzinfo=UTC) + timedelta(days=1)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)


def render_json(report: AuditReport) -> bytes:
    # The model itself, in both languages (the `lang` option does not apply): the
    # schema is the AuditReport model's JSON schema (docs/audit.md).
    return _dumps(report.model_dump(mode="json", by_alias=True)).encode("utf-8")


_JSON_ITEMS = 100  # findings or hosts per chunk written


def stream_json(report: AuditReport, detail: AuditDetail | None = None) -> Iterator[bytes]:
    """`render_json` of the whole model, byte for byte, with each agency's findings
    and hosts read from `detail` as they are written: the outline is dumped with a
    random mark in place of each list, and each mark is replaced by its list's items
    dumped one by one at the mark's indentation."""
    detail = detail or ModelDetail(report)
    token = secrets.token_hex(16)
    marks: dict[str, tuple[str, str]] = {}  # the mark's JSON text -> (agency, list)
    data = report.model_dump(mode="json", by_alias=True, exclude={"agencies"})
    data["agencies"] = []
    for i, audit in enumerate(report.agencies):
        dumped = audit.model_dump(mode="json", by_alias=True, exclude={"findings", "hosts"})
        for name in ("findings", "hosts"):
            mark = f"{token}:{i}:{name}"
            dumped[name] = mark
            marks[json.dumps(mark)] = (audit.standing.agency, name)
        data["agencies"].append(dumped)
    text = _dumps(data)
    found = sorted((text.index(mark), mark) for mark in marks)
    done = 0
    for at, mark in found:
        yield text[done:at].encode("utf-8")
        line = text.rfind("\n", 0, at) + 1
        indent = len(text[line:at]) - len(text[line:at].lstrip(" "))
        agency, name = marks[mark]
        items = detail.findings(agency) if name == "findings" else detail.hosts(agency)
        yield from _json_list(items, indent)
        done = at + len(mark)
    yield text[done:].encode("utf-8")


def _json_list(items: Iterator[BaseModel], indent: int) -> Iterator[bytes]:
    """A list as `json.dumps(indent=1)` writes it at `indent` spaces, item by item."""
    pad = "\n" + " " * (indent + 1)
    chunk: list[str] = []
    first = True
    for item in items:
        text = _dumps(item.model_dump(mode="json", by_alias=True)).replace("\n", pad)
        chunk.append(("[" if first else ",") + pad + text)
        first = False
        if len(chunk) >= _JSON_ITEMS:
            yield "".join(chunk).encode("utf-8")
            chunk.clear()
    chunk.append("[]" if first else "\n" + " " * indent + "]")
    yield "".join(chunk).encode("utf-8")


def stream_audit(
    report: AuditReport,
    fmt: Format,
    lang: Lang,
    detail: AuditDetail | None = None,
    *,
    table: Table = Table.FINDINGS,
) -> Iterator[bytes]:
    """The document in chunks; `table` chooses the CSV's table."""
    if fmt is Format.JSON:
        yield from stream_json(report, detail)
    elif fmt is Format.CSV:
        yield from stream_csv(report, lang, detail, table)
    elif fmt is Format.XLSX:
        yield render_xlsx(report, lang, detail)
    elif fmt is Format.PDF:
        # Printed, a province's every finding and host is hundreds of pages that took
        # Chromium minutes to lay out: the PDF lists the detail that needs attention
        # first and points to the files that hold all of it (server.reports.html_findings).
        page = render_html(report, lang, detail=detail, detail_rows=PDF_DETAIL_ROWS)
        yield html_to_pdf(page)
    else:
        yield from stream_html(report, lang, detail=detail)


def render_audit(
    report: AuditReport,
    fmt: Format,
    lang: Lang,
    detail: AuditDetail | None = None,
    *,
    table: Table = Table.FINDINGS,
) -> bytes:
    return b"".join(stream_audit(report, fmt, lang, detail, table=table))
