"""The audit package as one self-contained, printable HTML page (A4 print CSS).

Stdlib only: every value goes through `esc` (html.escape after `inert`), fixed text
comes from the catalogue, charts are inline SVG. No script, no external request of
any kind (no fonts, images or styles fetched), so the page can be archived and
printed offline, and a Content-Security-Policy meta tag forbids loading anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.read.audit_views import (
    SEVERITIES,
    AgencyAudit,
    AgencyStanding,
    AuditReport,
    FrameworkCompliance,
    HostRow,
    Unread,
)
from server.reports.charts import coverage_bar, score_trend, severity_bars
from server.reports.html_findings import findings_table
from server.reports.html_lan import lan_section
from server.reports.html_vulns import vuln_section
from server.reports.markup import esc, table
from server.reports.text import (
    CATALOGUE,
    Lang,
    change_text,
    date_text,
    datetime_text,
    number_text,
    percent_text,
    pick,
    t,
)

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


def _host_levels(audit: AgencyAudit, lang: Lang) -> str:
    known = sorted({h.security_level for h in audit.hosts if h.security_level is not None})
    parts = [str(level) for level in known]
    if not audit.hosts or any(h.security_level is None for h in audit.hosts):
        parts.append(t("unknown", lang))
    return esc(", ".join(parts))


def _agency(audit: AgencyAudit, rank_of: int, lang: Lang, detail_rows: int | None) -> str:
    s = audit.standing
    counts = audit.severity_counts.model_dump()
    summary = [
        [esc(t("score", lang)), esc(percent_text(s.score, lang))],
        [esc(t("rank", lang)), f"{s.rank} / {rank_of}"],
        [esc(t("change", lang)), esc(change_text(s.change, lang))],
        [esc(t("hosts", lang)), str(s.hosts)],
        [esc(t("stale_hosts", lang)), str(s.stale_hosts)],
        [esc(t("security_levels", lang)), _host_levels(audit, lang)],
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
    parts = [
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
    ]
    for severity in SEVERITIES:
        parts.append(findings_table(audit, severity, lang, detail_rows))
    if not audit.findings:
        parts.append(f"<p>{esc(t('none', lang))}</p>")
    parts.append(_remediation_and_waivers(audit, lang))
    parts.append(_hosts(audit, lang, detail_rows))
    parts.append(lan_section(audit, lang, detail_rows))
    parts.append(vuln_section(audit, lang, detail_rows))
    parts.append("</section>")
    return "".join(parts)


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


def _maybe(value: object, lang: Lang) -> str:
    """A value that may be unknown (the agent could not read it): never shown as 0."""
    if value is None:
        return esc(t("unknown", lang))
    if isinstance(value, bool):
        return esc(t("yes" if value else "no", lang))
    return esc(str(value))


def _unread(unread: Unread, lang: Lang) -> str:
    domain = f"domain.{unread.domain}"
    name = t(domain, lang) if domain in CATALOGUE else unread.domain
    text = f"{name}: {t(f'unread.{unread.kind.value}', lang)}"
    # The agent's reason is system text (often English): the English document only.
    if lang is Lang.EN and unread.reason:
        text += f" ({unread.reason})"
    return esc(text)


def _shown_hosts(audit: AgencyAudit, detail_rows: int | None) -> list[HostRow]:
    """Every host, or (printed) the `detail_rows` that need attention most: unknown
    score, then lowest score, then stale; listed in name order."""
    if detail_rows is None or len(audit.hosts) <= detail_rows:
        return list(audit.hosts)
    worst = sorted(
        audit.hosts,
        key=lambda h: (h.score is not None, h.score or 0.0, not h.stale, h.host, h.agent_id),
    )[:detail_rows]
    return sorted(worst, key=lambda h: (h.host, h.agent_id))


def _hosts(audit: AgencyAudit, lang: Lang, detail_rows: int | None) -> str:
    rows = []
    shown = _shown_hosts(audit, detail_rows)
    for h in shown:
        updates = _maybe(h.security_updates, lang)
        if h.oldest_security_update is not None:
            updates += f" ({esc(date_text(h.oldest_security_update, lang))})"
        certificates = "<br>".join(
            f"{esc(c.subject or c.location)}: {esc(date_text(c.not_after, lang))}, "
            + esc(t("days_left", lang).format(n=c.days_left))
            for c in h.certificates
        )
        exposed = ", ".join(
            f"{esc(s.protocol)}/{esc(s.address)}:{s.port} {esc(s.process or '')}".strip()
            for s in h.exposed_services
        )
        rows.append(
            [
                esc(h.host),
                esc(date_text(h.collected_at, lang)),
                _maybe(h.stale, lang),
                esc(percent_text(h.score, lang)),
                updates,
                _maybe(h.reboot_required, lang),
                certificates or esc(t("none", lang)),
                exposed or esc(t("none", lang)),
                "<br>".join(_unread(u, lang) for u in h.unread) or esc(t("none", lang)),
            ]
        )
    keys = (
        "host",
        "last_report",
        "stale",
        "score",
        "security_updates",
        "reboot",
        "certificates",
        "exposed",
        "unread",
    )
    hosts = table([t(k, lang) for k in keys], rows) if rows else f"<p>{esc(t('none', lang))}</p>"
    if len(shown) < len(audit.hosts):
        note = t("hosts_cut", lang).format(
            shown=number_text(len(shown), lang, 0), total=number_text(len(audit.hosts), lang, 0)
        )
        hosts = f"<p>{esc(note)}</p>{hosts}"
    excluded = "".join(
        f"<li>{esc(e.host)}: {esc(t(f'excluded.{e.reason.value}', lang))}</li>"
        for e in audit.excluded_hosts
    )
    excluded_part = f"<ul>{excluded}</ul>" if excluded else f"<p>{esc(t('none', lang))}</p>"
    return (
        f"<h3>{esc(t('hosts_section', lang))}</h3>{hosts}"
        f"<h3>{esc(t('excluded', lang))}</h3>{excluded_part}"
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


def render_html(report: AuditReport, lang: Lang, *, detail_rows: int | None = None) -> bytes:
    """The page; `detail_rows` caps the findings listed per agency and severity (the
    printed document: server.reports.html_findings), None lists every one."""
    title_key = "title.province" if report.scope == "province" else "title.agency"
    title = t(title_key, lang)
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(t('as_of', lang))}: {esc(datetime_text(report.as_of, lang))}</p>",
    ]
    if report.scope == "province":
        body.append(f"<h2>{esc(t('ranking', lang))}</h2>")
        body.append(table(_standing_head(lang), _standing_rows(report.ranking, lang)))
    body.extend(
        _agency(audit, report.ranked_agencies, lang, detail_rows) for audit in report.agencies
    )
    body.append(_methodology(report, lang))
    page = (
        f'<!DOCTYPE html><html lang="{lang.value}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    return page.encode("utf-8")
