"""The audit package as one self-contained, printable HTML page (A4 print CSS).

Stdlib only: every value goes through `esc` (html.escape after `inert`), fixed text
comes from the catalogue, charts are inline SVG. No script, no external request of
any kind (no fonts, images or styles fetched), so the page can be archived and
printed offline, and a Content-Security-Policy meta tag forbids loading anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from server.read.audit_detail import AuditDetail, ModelDetail
from server.read.audit_views import (
    SEVERITIES,
    AgencyAudit,
    AgencyStanding,
    AuditReport,
    FrameworkCompliance,
)
from server.reports.charts import coverage_bar, score_trend, severity_bars
from server.reports.html_findings import findings_table
from server.reports.html_hosts import hosts_section
from server.reports.html_lan import lan_section
from server.reports.html_vulns import vuln_section
from server.reports.markup import esc, table
from server.reports.text import (
    Lang,
    change_text,
    date_text,
    datetime_text,
    number_text,
    percent_text,
    pick,
    t,
)

_PIECES = 256  # HTML pieces joined per chunk written
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; margin: 1.5em; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; border-bottom: 1px solid #999; }
h3 { font-size: 11pt; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eee; }
.sev-critical { color: #8b0000; font-weight: bold; } .sev-high { color: #b34700; }
.status-fail { color: #8b0000; } .status-pass { color: #1b5e20; }
.status-error { color: #6a1b9a; } .evidence { font-family: monospace; font-size: 8pt; }
.fix code { font-family: monospace; font-size: 8pt; }
.fix code { white-space: pre-wrap; overflow-wrap: anywhere; }
@page { size: A4; margin: 15mm; }
@media print { body { margin: 0; } h2 { break-before: auto; } tr { break-inside: avoid; } }
"""


def _standing_rows(ranking: Iterable[AgencyStanding], lang: Lang) -> list[list[str]]:
    return [
        [
            str(s.rank),
            esc(s.name) + f" ({esc(s.agency)})",
            esc(percent_text(s.score, lang)),
            esc(change_text(s.change, lang)),
            str(s.hosts),
            str(s.stale_hosts),
        ]
        for s in ranking
    ]


def _standing_head(lang: Lang) -> list[str]:
    keys = ("rank", "agency", "score", "change", "hosts", "stale_hosts")
    return [t(k, lang) for k in keys]


def _framework(framework: FrameworkCompliance, lang: Lang) -> str:
    counts = (
        f"{esc(t('met', lang))}: {framework.met} · {esc(t('not_met', lang))}: "
        f"{framework.not_met} · {esc(t('not_assessed', lang))}: {framework.not_assessed} · "
        f"{esc(t('not_applicable', lang))}: {framework.not_applicable} · "
        f"{esc(t('other', lang))}: {framework.other}"
    )
    rows = [
        [
            esc(r.requirement) + _levels(r.levels, lang),
            esc(pick(r.title, lang)),
            f'<span class="status-{esc(r.status.value)}">'
            f"{esc(t(f'status.{r.status.value}', lang))}</span>",
            esc(t(f"conf.{r.confidence}", lang)),
            esc(", ".join(r.rules)),
            esc(", ".join(r.failing_hosts)) or esc(t("none", lang)),
        ]
        for r in framework.requirements
    ]
    head = [t(k, lang) for k in ("requirement", "message", "status", "confidence", "rules")]
    head.append(t("failing_hosts", lang))
    return (
        f"<h3>{esc(pick(framework.title, lang))} ({esc(framework.version)})</h3>"
        f"<p>{counts}</p>{coverage_bar(framework, lang, esc)}{table(head, rows)}"
    )


def _levels(levels: Iterable[int], lang: Lang) -> str:
    """The security levels a requirement belongs to (nothing: every level)."""
    shown = ", ".join(str(level) for level in levels)
    return f"<br>{esc(t('levels', lang).format(levels=shown))}" if shown else ""


def _host_levels(levels: set[int | None], lang: Lang) -> str:
    parts = [str(level) for level in sorted(lv for lv in levels if lv is not None)]
    if not levels or None in levels:
        parts.append(t("unknown", lang))
    return esc(", ".join(parts))


def _agency(
    audit: AgencyAudit, rank_of: int, lang: Lang, detail: AuditDetail, detail_rows: int | None
) -> Iterator[str]:
    s = audit.standing
    counts = audit.severity_counts.model_dump()
    summary = [
        [esc(t("score", lang)), esc(percent_text(s.score, lang))],
        [esc(t("rank", lang)), f"{s.rank} / {rank_of}"],
        [esc(t("change", lang)), esc(change_text(s.change, lang))],
        [esc(t("hosts", lang)), str(s.hosts)],
        [esc(t("stale_hosts", lang)), str(s.stale_hosts)],
        [esc(t("security_levels", lang)), _host_levels(detail.levels(s.agency), lang)],
        [esc(t("waived_findings", lang)), str(audit.waived_findings)],
    ]
    urgent = [
        [
            f'<span class="sev-{esc(a.severity.value)}">'
            f"{esc(t(f'sev.{a.severity.value}', lang))}</span>",
            esc(a.rule_id) + " — " + esc(pick(a.title, lang)),
            str(a.hosts),
            esc(date_text(a.oldest_first_seen, lang)),
            esc(pick(a.remediation, lang)),
        ]
        for a in audit.urgent_actions
    ]
    urgent_keys = ("severity", "rule", "hosts_affected", "first_seen", "remediation")
    urgent_head = [t(k, lang) for k in urgent_keys]
    yield from (
        f"<section><h2>{esc(s.name)} ({esc(s.agency)})</h2>",
        f"<h3>{esc(t('summary', lang))}</h3>",
        table([t("summary", lang), ""], summary),
        severity_bars(counts, lang, esc),
        f"<h3>{esc(t('trend', lang))}</h3>",
        score_trend(s.trend, lang, esc),
        f"<h3>{esc(t('urgent', lang))}</h3>",
        table(urgent_head, urgent) if urgent else f"<p>{esc(t('none', lang))}</p>",
        f"<h2>{esc(t('compliance', lang))}</h2>",
        *(_framework(f, lang) for f in audit.frameworks),
        f"<h2>{esc(t('findings', lang))}</h2>",
    )
    for severity in SEVERITIES:
        yield from findings_table(audit, severity, lang, detail, detail_rows)
    if not detail.finding_count(s.agency):
        yield f"<p>{esc(t('none', lang))}</p>"
    yield _remediation_and_waivers(audit, lang)
    yield from hosts_section(audit, lang, detail, detail_rows)
    yield lan_section(audit, lang, detail_rows)
    yield vuln_section(audit, lang, detail_rows)
    yield "</section>"


def _days(value: float | None, lang: Lang) -> str:
    return esc(t("unknown", lang) if value is None else number_text(value, lang))


def _remediation_and_waivers(audit: AgencyAudit, lang: Lang) -> str:
    r = audit.remediation
    rows = [
        [esc(t("resolved", lang)), str(r.resolved)],
        [esc(t("median_days", lang)), _days(r.median_days, lang)],
        [esc(t("still_open", lang)), str(r.open)],
        [esc(t("oldest_open", lang)), _days(r.oldest_open_days, lang)],
    ]
    waivers = [
        [
            esc(w.id),
            esc(w.rule_id),
            esc(" ".join(x for x in (w.host or "", w.item or "") if x)) or "*",
            esc(w.justification),
            esc(w.approved_by or t("none", lang)),
            esc(date_text(w.expires, lang)),
            esc(t("yes" if w.in_force else "no", lang)),
        ]
        for w in audit.waivers
    ]
    head = ["waiver", "rule", "item", "justification", "approved_by", "expires", "in_force"]
    return (
        f"<h3>{esc(t('remediation_time', lang))}</h3>"
        + table([t("remediation_time", lang), ""], rows)
        + f"<h3>{esc(t('waivers', lang))}</h3>"
        + (
            table([t(k, lang) for k in head], waivers)
            if waivers
            else f"<p>{esc(t('none', lang))}</p>"
        )
    )


def _methodology(report: AuditReport, lang: Lang) -> str:
    weights = ", ".join(
        f"{t(f'sev.{name}', lang)} = {number_text(value, lang, 0)}"
        for name, value in report.weights.items()
    )
    packs = ", ".join(f"{p.id} {p.version}" for p in report.packs)
    rows = [
        [esc(t("weights", lang)), esc(weights)],
        [esc(t("packs", lang)), esc(packs)],
        [esc(t("fingerprint", lang)), f"<code>{esc(report.policy_fingerprint)}</code>"],
        [esc(t("as_of", lang)), esc(datetime_text(report.as_of, lang))],
        [esc(t("previous", lang)), esc(datetime_text(report.previous_as_of, lang))],
        [
            esc(t("stale_after", lang)),
            esc(number_text(report.stale_after_seconds / 3600, lang)),
        ],
    ]
    return (
        f"<h2>{esc(t('methodology', lang))}</h2><p>{esc(t('formula', lang))}</p>"
        f"<p>{esc(t('hosts_note', lang))}</p><p>{esc(t('levels_note', lang))}</p>"
        f"{table([t('methodology', lang), ''], rows)}"
    )


def render_html(
    report: AuditReport,
    lang: Lang,
    *,
    detail: AuditDetail | None = None,
    detail_rows: int | None = None,
) -> bytes:
    """The page at once (`stream_html` joined)."""
    return b"".join(stream_html(report, lang, detail=detail, detail_rows=detail_rows))


def stream_html(
    report: AuditReport,
    lang: Lang,
    *,
    detail: AuditDetail | None = None,
    detail_rows: int | None = None,
) -> Iterator[bytes]:
    """The page in pieces as the detail is read (default: the model's own lists);
    `detail_rows` caps the findings listed per agency and severity and the hosts (the
    printed document: server.reports.html_findings), None lists every one."""
    detail = detail or ModelDetail(report)
    title_key = "title.province" if report.scope == "province" else "title.agency"
    title = t(title_key, lang)
    head = (
        f'<!DOCTYPE html><html lang="{lang.value}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f"<p>{esc(t('as_of', lang))}: {esc(datetime_text(report.as_of, lang))}</p>"
    )
    yield head.encode("utf-8")
    if report.scope == "province":
        ranking = table(_standing_head(lang), _standing_rows(report.ranking, lang))
        yield f"<h2>{esc(t('ranking', lang))}</h2>{ranking}".encode()
    for audit in report.agencies:
        pieces: list[str] = []
        for piece in _agency(audit, report.ranked_agencies, lang, detail, detail_rows):
            pieces.append(piece)
            if len(pieces) >= _PIECES:  # a few hundred rows per write, not one each
                yield "".join(pieces).encode("utf-8")
                pieces.clear()
        yield "".join(pieces).encode("utf-8")
    yield (_methodology(report, lang) + "</body></html>").encode("utf-8")
