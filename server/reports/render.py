"""One entry point for every audit format: `render_audit(report, format, lang)`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from server.read.audit_views import AuditReport
from server.reports.html import render_html
from server.reports.pdf import html_to_pdf
from server.reports.tabular import render_csv, render_xlsx
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


def render_json(report: AuditReport) -> bytes:
    # The model itself, in both languages (the `lang` option does not apply): the
    # schema is the AuditReport model's JSON schema (docs/audit.md).
    data = report.model_dump(mode="json", by_alias=True)
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def render_audit(report: AuditReport, fmt: Format, lang: Lang) -> bytes:
    if fmt is Format.JSON:
        return render_json(report)
    if fmt is Format.CSV:
        return render_csv(report, lang)
    if fmt is Format.XLSX:
        return render_xlsx(report, lang)
    if fmt is Format.PDF:
        # Printed, a province's every finding and host is hundreds of pages that took
        # Chromium minutes to lay out: the PDF lists the detail that needs attention
        # first and points to the files that hold all of it (server.reports.html_findings).
        return html_to_pdf(render_html(report, lang, detail_rows=PDF_DETAIL_ROWS))
    return render_html(report, lang)
