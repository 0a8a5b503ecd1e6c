"""Tables for spreadsheets: one row per finding, per host (the state the printed
document cuts), per unmanaged LAN device, and per KEV or critical/high fix-available
vulnerability. The XLSX holds the four as sheets; a CSV file holds one table
(`Table`, the findings by default), UTF-8 with a BOM. Findings and hosts are read
from the detail as a stream, a row written as it is read.

A cell starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed with an
apostrophe: spreadsheet programs would otherwise run it as a formula (CSV injection,
OWASP). Dates stay dates in XLSX (typed cells) and ISO 8601 in CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime, time
from enum import StrEnum

from server.read.audit_detail import AuditDetail, ModelDetail
from server.read.audit_views import AuditReport, Unread, VulnStatus
from server.reports.text import CATALOGUE, Lang, evidence_text, inert, number_text, pick, t

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "agency",
    "host",
    "rule",
    "severity",
    "status",
    "item",
    "first_seen",
    "age_days",
    "message",
    "evidence",
    "remediation",
    "fix",
)

HOST_COLUMNS = (
    "agency",
    "host",
    "security_level",
    "last_report",
    "stale",
    "score",
    "security_updates_count",
    "oldest_update",
    "reboot",
    "certificates",
    "exposed",
    "unread",
)

# The unmanaged LAN devices table.
LAN_COLUMNS = (
    "agency",
    "lan_status",
    "ip_addresses",
    "mac",
    "vendor",
    "open_ports",
    "risky",
    "first_seen",
    "last_seen",
    "seen_by",
    "lan_failed",
)

# The vulnerabilities table: the KEV and critical/high fix-available items.
VULN_COLUMNS = (
    "agency",
    "status",
    "vuln_cve",
    "vuln_package",
    "vuln_versions",
    "vuln_severity",
    "vuln_exploited",
    "host",
    "vuln_fix_since",
)

Cell = str | float | datetime | None


def safe_cell(value: str) -> str:
    """Text a spreadsheet shows as text, never evaluates."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def header(lang: Lang) -> list[str]:
    return [t(column, lang) for column in COLUMNS]


def rows(report: AuditReport, lang: Lang, detail: AuditDetail) -> Iterator[list[Cell]]:
    """Typed cells, one list per finding; every string already made safe."""
    for audit in report.agencies:
        for finding in detail.findings(audit.standing.agency):
            yield [
                safe_cell(inert(finding.agency)),
                safe_cell(inert(finding.host)),
                safe_cell(inert(finding.rule_id)),
                t(f"sev.{finding.severity.value}", lang),
                t(f"status.{finding.status.value}", lang),
                safe_cell(inert(finding.item_key)),
                finding.first_seen,
                round(finding.age_days, 2),
                safe_cell(pick(finding.message, lang)),
                safe_cell(evidence_text(finding.evidence)),
                safe_cell(pick(finding.remediation, lang)),
                None if finding.fix is None else safe_cell(inert(finding.fix)),
            ]


def _unread(unread: Unread, lang: Lang) -> str:
    domain = f"domain.{unread.domain}"
    name = t(domain, lang) if domain in CATALOGUE else inert(unread.domain)
    return f"{name}: {t(f'unread.{unread.kind.value}', lang)}"


def _known(value: bool | None, lang: Lang) -> str | None:
    return None if value is None else t("yes" if value else "no", lang)


def host_rows(report: AuditReport, lang: Lang, detail: AuditDetail) -> Iterator[list[Cell]]:
    """Typed cells, one list per host; an unknown value is an empty cell, never 0."""
    for audit in report.agencies:
        for h in detail.hosts(audit.standing.agency):
            yield [
                safe_cell(inert(audit.standing.agency)),
                safe_cell(inert(h.host)),
                None if h.security_level is None else float(h.security_level),
                h.collected_at,
                _known(h.stale, lang),
                None if h.score is None else round(h.score, 4),
                None if h.security_updates is None else float(h.security_updates),
                h.oldest_security_update,
                _known(h.reboot_required, lang),
                float(len(h.certificates)),
                float(len(h.exposed_services)),
                safe_cell(", ".join(_unread(u, lang) for u in h.unread)),
            ]


def lan_rows(report: AuditReport, lang: Lang, _detail: AuditDetail) -> Iterator[list[Cell]]:
    """One row per unmanaged device; an agency with no sweeping host gets one row
    saying it was not assessed (never an empty list that reads as none)."""
    for audit in report.agencies:
        agency = safe_cell(inert(audit.standing.agency))
        failed = safe_cell(inert(", ".join(audit.lan.failed_sweeps))) or None
        if not audit.lan.assessed:
            yield [agency, t("not_assessed", lang), *[None] * (len(LAN_COLUMNS) - 3), failed]
            continue
        for d in audit.lan.unmanaged_devices:
            ports = ", ".join(f"{p.port}/{p.protocol} {p.service}".strip() for p in d.ports)
            risky = ", ".join(f"{p.port} {p.risky_rule}" for p in d.ports if p.risky_rule)
            yield [
                agency,
                t("lan_swept", lang),
                safe_cell(inert(", ".join(d.ips))),
                safe_cell(inert(d.mac or "")),
                safe_cell(inert(d.vendor)),
                safe_cell(inert(ports)),
                safe_cell(inert(risky)),
                d.first_seen,
                d.last_seen,
                safe_cell(inert(", ".join(d.seen_by))),
                failed,
            ]


def vuln_rows(report: AuditReport, lang: Lang, _detail: AuditDetail) -> Iterator[list[Cell]]:
    """One row per urgent vulnerability; an agency not assessed gets one row saying
    why (never an empty list that reads as none)."""
    for audit in report.agencies:
        agency = safe_cell(inert(audit.standing.agency))
        section = audit.vulnerabilities
        if section.status is not VulnStatus.ASSESSED:
            status = t(f"vuln.{section.status.value}", lang)
            if section.status is VulnStatus.STALE:
                status = status.format(days=number_text(section.max_age_days or 0, lang, 0))
            yield [agency, status, *[None] * (len(VULN_COLUMNS) - 2)]
            continue
        for i in section.urgent:
            versions = f"{i.installed_version} → {i.fixed_version or t('none', lang)}"
            yield [
                agency,
                t(f"vstate.{i.state}", lang),
                safe_cell(inert(i.cve)),
                safe_cell(inert(i.package)),
                safe_cell(inert(versions)),
                t(f"vsev.{i.severity}", lang),
                t("yes" if i.kev else "no", lang),
                safe_cell(inert(", ".join(i.hosts))),
                datetime.combine(i.fix_since, time(0, 0)) if i.fix_since else None,
            ]


class Table(StrEnum):
    """The tables of the package: each a CSV file, each a sheet of the XLSX."""

    FINDINGS = "findings"
    HOSTS = "hosts"
    DEVICES = "devices"
    VULNERABILITIES = "vulnerabilities"


Rows = Callable[[AuditReport, Lang, AuditDetail], Iterator[list[Cell]]]
# Each table: its columns, its rows and its sheet's title (in the XLSX's order).
TABLES: dict[Table, tuple[tuple[str, ...], Rows, str]] = {
    Table.FINDINGS: (COLUMNS, rows, "findings"),
    Table.HOSTS: (HOST_COLUMNS, host_rows, "hosts_section"),
    Table.DEVICES: (LAN_COLUMNS, lan_rows, "lan_unmanaged"),
    Table.VULNERABILITIES: (VULN_COLUMNS, vuln_rows, "vuln_cve"),
}
_CSV_ROWS = 200  # rows per chunk written


def _csv_cell(cell: Cell) -> str | float | int | None:
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Counts and levels are typed as numbers (floats for openpyxl): "2", not "2.0".
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    return cell


def stream_csv(
    report: AuditReport,
    lang: Lang,
    detail: AuditDetail | None = None,
    table: Table = Table.FINDINGS,
) -> Iterator[bytes]:
    """One table as CSV, a chunk of rows at a time; the first chunk starts with the
    BOM that tells spreadsheet programs the file is UTF-8 (Vietnamese diacritics)."""
    detail = detail or ModelDetail(report)
    columns, table_rows, _title = TABLES[table]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([t(column, lang) for column in columns])
    yield "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    for written, row in enumerate(table_rows(report, lang, detail), start=1):
        writer.writerow([_csv_cell(cell) for cell in row])
        if written % _CSV_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def render_csv(
    report: AuditReport,
    lang: Lang,
    detail: AuditDetail | None = None,
    table: Table = Table.FINDINGS,
) -> bytes:
    return b"".join(stream_csv(report, lang, detail, table))


def render_xlsx(report: AuditReport, lang: Lang, detail: AuditDetail | None = None) -> bytes:
    # openpyxl is heavy and only needed for this format (LAZY_IMPORTS in test_layout).
    from openpyxl import Workbook  # noqa: PLC0415

    detail = detail or ModelDetail(report)
    # Write-only: each row goes to the sheet's temporary file as it is appended.
    workbook = Workbook(write_only=True)
    for columns, table_rows, title in TABLES.values():
        sheet = workbook.create_sheet(title=t(title, lang)[:31])
        sheet.append([t(column, lang) for column in columns])
        for row in table_rows(report, lang, detail):
            sheet.append(_naive(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _naive(row: list[Cell]) -> list[Cell]:
    # XLSX keeps no time zone: the times are UTC, said in the column docs.
    return [cell.replace(tzinfo=None) if isinstance(cell, datetime) else cell for cell in row]
