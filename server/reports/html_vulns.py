"""The audit page's vulnerability section: an agency's known vulnerabilities.

Every value from a host or a feed (host labels, package names, versions, CVE ids)
goes through `esc`. A section that could not be assessed (no store, stale data, no
host matched) says so, with the feeds' ages, and shows no count: never "0". The
printed (PDF) document lists at most `detail_rows` vulnerabilities, known exploited
first, and says how many there are and where the rest is, as the findings do.
"""

from __future__ import annotations

from server.read.audit_views import AgencyAudit, VulnItemRow, VulnSection, VulnStatus
from server.reports.markup import esc, table
from server.reports.text import Lang, date_text, number_text, t

STATE_KEYS = ("fix_available", "fix_pending", "affected_no_fix", "will_not_fix", "end_of_life")
ITEM_KEYS = (
    "vuln_cve",
    "vuln_package",
    "vuln_versions",
    "vuln_severity",
    "status",
    "vuln_exploited",
    "host",
    "vuln_fix_since",
)


def _feeds(section: VulnSection, lang: Lang) -> str:
    if not section.feeds:
        return ""
    rows = [
        [
            esc(f.name),
            esc(date_text(f.generated_at, lang)),
            esc(number_text(f.age_days, lang, 0)),
            esc(t("yes" if f.stale else "no", lang)),
        ]
        for f in section.feeds
    ]
    keys = ("vuln_feed", "vuln_generated", "vuln_age", "vuln_stale_flag")
    return f"<h4>{esc(t('vuln_feeds', lang))}</h4>" + table([t(k, lang) for k in keys], rows)


def _unmatched(section: VulnSection, lang: Lang) -> str:
    if not section.unmatched_hosts:
        return ""
    shown = ", ".join(
        f"{esc(u.host)} ({esc(t(f'vuln_problem.{u.problem.value}', lang))})"
        for u in section.unmatched_hosts
    )
    return f"<p>{esc(t('vuln_unmatched', lang))}: {shown}</p>"


def _status_text(section: VulnSection, lang: Lang) -> str:
    text = t(f"vuln.{section.status.value}", lang)
    if section.status is VulnStatus.STALE:
        text = text.format(days=number_text(section.max_age_days or 0, lang, 0))
    return text


def _counts(section: VulnSection, lang: Lang) -> str:
    rows = [
        [
            esc(t(f"vsev.{c.severity}", lang)),
            *(str(getattr(c, key)) for key in STATE_KEYS),
            str(c.total),
        ]
        for c in section.counts or []
    ]
    head = [t("vuln_severity", lang), *(t(f"vstate.{k}", lang) for k in STATE_KEYS)]
    return table([*head, t("vuln_total", lang)], rows)


def _item(item: VulnItemRow, lang: Lang) -> list[str]:
    fixed = item.fixed_version or t("none", lang)
    since = date_text(item.fix_since, lang) if item.fix_since else t("unknown", lang)
    return [
        esc(item.cve),
        esc(item.package),
        f"{esc(item.installed_version)} → {esc(fixed)}",
        esc(t(f"vsev.{item.severity}", lang)),
        esc(t(f"vstate.{item.state}", lang)),
        esc(t("yes" if item.kev else "no", lang)),
        esc(", ".join(item.hosts)),
        esc(since),
    ]


def vuln_section(audit: AgencyAudit, lang: Lang, detail_rows: int | None = None) -> str:
    section = audit.vulnerabilities
    parts = [f"<h3>{esc(t('vuln', lang))}</h3>", f"<p>{esc(t('vuln_note', lang))}</p>"]
    if section.status is not VulnStatus.ASSESSED:
        parts.append(f"<p>{esc(_status_text(section, lang))}</p>")
        parts.append(_feeds(section, lang))
        parts.append(_unmatched(section, lang))
        return "".join(parts)
    summary = [
        [esc(t("vuln_matched", lang)), esc(", ".join(section.matched_hosts))],
        [esc(t("vuln_items", lang)), esc(number_text(section.items or 0, lang, 0))],
        [esc(t("vuln_kev", lang)), esc(number_text(section.kev_items or 0, lang, 0))],
    ]
    parts += [table([t("vuln", lang), ""], summary), _unmatched(section, lang)]
    parts += [_counts(section, lang), _feeds(section, lang)]
    top = [
        [esc(h.host), str(h.fix_available), str(h.critical_high), str(h.kev)]
        for h in section.top_hosts
    ]
    keys = ("host", "vstate.fix_available", "vuln_critical_high", "vuln_kev_of")
    parts.append(f"<h4>{esc(t('vuln_top', lang))}</h4>")
    none = f"<p>{esc(t('none', lang))}</p>"
    parts.append(table([t(k, lang) for k in keys], top) if top else none)
    items = list(section.urgent)  # already KEV first
    parts.append(f"<h4>{esc(t('vuln_urgent', lang))}</h4>")
    if detail_rows is not None and len(items) > detail_rows:
        note = t("vuln_cut", lang).format(
            shown=number_text(detail_rows, lang, 0), total=number_text(len(items), lang, 0)
        )
        parts.append(f"<p>{esc(note)}</p>")
        items = items[:detail_rows]
    parts.append(
        table([t(k, lang) for k in ITEM_KEYS], (_item(i, lang) for i in items))
        if items
        else f"<p>{esc(t('none', lang))}</p>"
    )
    return "".join(parts)
