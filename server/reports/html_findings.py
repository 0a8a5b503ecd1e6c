"""The audit page's findings by severity: every finding in the HTML; in the printed
(PDF) document, a summary per rule and the first rows of the detail.

A province's PDF with every finding is hundreds of pages (one row per host and
item): Chromium lays out and prints each of them, which made the PDF of 2,000 hosts
take minutes, and nobody reads page 600. The printed document therefore keeps, per
agency and severity, one summary row per rule (every rule with findings appears:
hosts, findings, the oldest first seen) and at most `detail_rows` findings, and says
how many more there are and where they are: one row per finding in the CSV and XLSX
files, and in the HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

from rules.language.model import Severity
from server.read.audit_detail import AuditDetail
from server.read.audit_views import AgencyAudit, AuditFinding, Text
from server.reports.markup import esc, table, table_parts
from server.reports.text import Lang, date_text, evidence_text, inert, number_text, pick, t

DETAIL_KEYS = ("host", "rule", "item", "evidence", "remediation", "first_seen", "age_days")
SUMMARY_KEYS = ("rule", "hosts_affected", "count", "first_seen")


def _fix(command: str | None) -> str:
    # Under the remediation text, as code: the command for this host's OS family.
    return "" if command is None else f'<div class="fix"><code>{esc(inert(command))}</code></div>'


def _detail_rows(findings: Iterable[AuditFinding], lang: Lang) -> Iterator[list[str]]:
    return (
        [
            esc(f.host),
            esc(f.rule_id) + "<br>" + esc(pick(f.title, lang)),
            esc(f.item_key),
            esc(pick(f.message, lang))
            + f'<div class="evidence">{esc(evidence_text(f.evidence))}</div>',
            esc(pick(f.remediation, lang)) + _fix(f.fix),
            esc(date_text(f.first_seen, lang)),
            esc(number_text(f.age_days, lang)),
            esc(t("yes" if f.status.value == "waived" else "no", lang)),
        ]
        for f in findings
    )


class _Rule:
    """One rule's findings summed up (the printed summary): hosts, count, oldest."""

    def __init__(self, finding: AuditFinding) -> None:
        self.rule_id = finding.rule_id
        self.title: Text = finding.title
        self.hosts: set[str] = set()
        self.count = 0
        self.oldest: datetime = finding.first_seen

    def add(self, finding: AuditFinding) -> None:
        self.hosts.add(finding.agent_id)
        self.count += 1
        self.oldest = min(self.oldest, finding.first_seen)


def _by_rule(findings: Iterable[AuditFinding], lang: Lang) -> str:
    groups: dict[str, _Rule] = {}
    for finding in findings:
        groups.setdefault(finding.rule_id, _Rule(finding)).add(finding)
    ordered = sorted(groups.values(), key=lambda g: (-len(g.hosts), g.rule_id))
    rows = [
        [
            esc(group.rule_id) + " — " + esc(pick(group.title, lang)),
            str(len(group.hosts)),
            str(group.count),
            esc(date_text(group.oldest, lang)),
        ]
        for group in ordered
    ]
    return table([t(k, lang) for k in SUMMARY_KEYS], rows)


def findings_table(
    audit: AgencyAudit,
    severity: Severity,
    lang: Lang,
    detail: AuditDetail,
    detail_rows: int | None = None,
) -> Iterator[str]:
    """The findings of one severity: all of them (`detail_rows` None), or a summary
    per rule and the first `detail_rows` when there are more; read from `detail` as
    a stream (the summary reads them twice)."""
    agency = audit.standing.agency
    count = detail.finding_count(agency, severity)
    if not count:
        return
    head = [t(k, lang) for k in (*DETAIL_KEYS, "waiver")]
    yield f"<h3>{esc(t(f'sev.{severity.value}', lang))} ({count})</h3>"
    if detail_rows is None or count <= detail_rows:
        yield from table_parts(head, _detail_rows(detail.findings(agency, severity), lang))
        return
    note = t("detail_cut", lang).format(
        shown=number_text(detail_rows, lang, 0), total=number_text(count, lang, 0)
    )
    yield _by_rule(detail.findings(agency, severity), lang)
    yield f"<p>{esc(note)}</p>"
    first = islice(detail.findings(agency, severity), detail_rows)
    yield table(head, _detail_rows(first, lang))
