"""The audit page's hosts: each host's state (security level, last report, score,
patches, certificates, exposed services, what could not be read), and the hosts
excluded and why.

Read from the detail as a stream in the HTML. The printed (PDF) document lists at
most `detail_rows` hosts, those that need attention most (unknown score, then lowest
score, then stale), in name order: one pass reads every host's sort key (a few
values each), a second writes the chosen ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from server.read.audit_detail import AuditDetail
from server.read.audit_views import AgencyAudit, HostRow, Unread
from server.reports.markup import esc, table_parts
from server.reports.text import CATALOGUE, Lang, date_text, number_text, percent_text, t

HOST_KEYS = (
    "host",
    "security_level",
    "last_report",
    "stale",
    "score",
    "security_updates",
    "reboot",
    "certificates",
    "exposed",
    "unread",
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


def _worst(hosts: Iterator[HostRow], detail_rows: int) -> set[tuple[str, str]]:
    """The (host, agent id) of the `detail_rows` hosts that need attention most."""
    keys = sorted(
        (h.score is not None, h.score or 0.0, not h.stale, h.host, h.agent_id) for h in hosts
    )
    return {(key[3], key[4]) for key in keys[:detail_rows]}


def _shown(
    audit: AgencyAudit, detail: AuditDetail, total: int, detail_rows: int | None
) -> Iterator[HostRow]:
    agency = audit.standing.agency
    if detail_rows is None or total <= detail_rows:
        return detail.hosts(agency)
    chosen = _worst(detail.hosts(agency), detail_rows)
    return (h for h in detail.hosts(agency) if (h.host, h.agent_id) in chosen)


def _row(h: HostRow, lang: Lang) -> list[str]:
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
    return [
        esc(h.host),
        _maybe(h.security_level, lang),
        esc(date_text(h.collected_at, lang)),
        _maybe(h.stale, lang),
        esc(percent_text(h.score, lang)),
        updates,
        _maybe(h.reboot_required, lang),
        certificates or esc(t("none", lang)),
        exposed or esc(t("none", lang)),
        "<br>".join(_unread(u, lang) for u in h.unread) or esc(t("none", lang)),
    ]


def hosts_section(
    audit: AgencyAudit, lang: Lang, detail: AuditDetail, detail_rows: int | None
) -> Iterator[str]:
    yield f"<h3>{esc(t('hosts_section', lang))}</h3>"
    total = detail.host_count(audit.standing.agency)
    if not total:
        yield f"<p>{esc(t('none', lang))}</p>"
    else:
        if detail_rows is not None and total > detail_rows:
            note = t("hosts_cut", lang).format(
                shown=number_text(detail_rows, lang, 0), total=number_text(total, lang, 0)
            )
            yield f"<p>{esc(note)}</p>"
        rows = (_row(h, lang) for h in _shown(audit, detail, total, detail_rows))
        yield from table_parts([t(k, lang) for k in HOST_KEYS], rows)
    excluded = "".join(
        f"<li>{esc(e.host)}: {esc(t(f'excluded.{e.reason.value}', lang))}</li>"
        for e in audit.excluded_hosts
    )
    excluded_part = f"<ul>{excluded}</ul>" if excluded else f"<p>{esc(t('none', lang))}</p>"
    yield f"<h3>{esc(t('excluded', lang))}</h3>{excluded_part}"
