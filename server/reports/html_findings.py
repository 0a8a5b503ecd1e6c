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

from collections import defaultdict

from rules.language.model import Severity
from server.read.audit_views import AgencyAudit, AuditFinding
from server.reports.markup import esc, table
from server.reports.text import Lang, date_text, evidence_text, number_text, pick, t

DETAIL_KEYS = ("host", "rule", "item", "evidence", "remediation", "first_seen", "age_days")
SUMMARY_KEYS = ("rule", "hosts_affected", "count", "first_seen")


def _detail_rows(findings: list[AuditFinding], lang: Lang) -> list[list[str]]:
    return [
        [
            esc(f.host),
            esc(f.rule_id) + "<br>" + esc(pick(f.title, lang)),
            esc(f.item_key),
            esc(pick(f.message, lang))
            + f'<div class="evidence">{esc(evidence_text(f.evidence))}</div>',
            esc(pick(f.remediation, lang)),
            esc(date_text(f.first_seen, lang)),
            esc(number_text(f.age_days, lang)),
            esc(t("yes" if f.status.value == "waived" else "no", lang)),
        ]
        for f in findings
    ]


def _by_rule(findings: list[AuditFinding], lang: Lang) -> str:
    groups: dict[str, list[AuditFinding]] = defaultdict(list)
    for finding in findings:
        groups[finding.rule_id].append(finding)
    ordered = sorted(groups.values(), key=lambda g: (-len({f.agent_id for f in g}), g[0].rule_id))
    rows = [
        [
            esc(group[0].rule_id) + " — " + esc(pick(group[0].title, lang)),
            str(len({f.agent_id for f in group})),
            str(len(group)),
            esc(date_text(min(f.first_seen for f in group), lang)),
        ]
        for group in ordered
    ]
    return table([t(k, lang) for k in SUMMARY_KEYS], rows)


def findings_table(
    audit: AgencyAudit, severity: Severity, lang: Lang, detail_rows: int | None = None
) -> str:
    """The findings of one severity: all of them (`detail_rows` None), or a summary
    per rule and the first `detail_rows` when there are more."""
    chosen = [f for f in audit.findings if f.severity is severity]
    if not chosen:
        return ""
    head = [t(k, lang) for k in (*DETAIL_KEYS, "waiver")]
    title = f"<h3>{esc(t(f'sev.{severity.value}', lang))} ({len(chosen)})</h3>"
    if detail_rows is None or len(chosen) <= detail_rows:
        return title + table(head, _detail_rows(chosen, lang))
    note = t("detail_cut", lang).format(
        shown=number_text(detail_rows, lang, 0), total=number_text(len(chosen), lang, 0)
    )
    return (
        title
        + _by_rule(chosen, lang)
        + f"<p>{esc(note)}</p>"
        + table(head, _detail_rows(chosen[:detail_rows], lang))
    )
