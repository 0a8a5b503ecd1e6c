"""The audit page's LAN section: the agency's unmanaged devices as of the cut-off.

Every value a device reported (vendor, service guess, host labels) goes through
`esc`. An agency with no sweeping host says it was not assessed, never "0", and the
hosts whose sweep failed are named. The
printed (PDF) document lists at most `detail_rows` devices, those with a risky open
port first, and says how many there are and where the rest is, as the findings do.
"""

from __future__ import annotations

from server.read.audit_views import AgencyAudit, LanDeviceRow
from server.reports.markup import esc, table
from server.reports.text import Lang, date_text, number_text, t

DEVICE_KEYS = ("ip_addresses", "mac", "vendor", "open_ports", "first_seen", "last_seen", "seen_by")


def _ports(device: LanDeviceRow, lang: Lang) -> str:
    shown = []
    for p in device.ports:
        text = f"{p.port}/{esc(p.protocol)}" + (f" {esc(p.service)}" if p.service else "")
        if p.risky_rule:
            text = (
                f'<span class="sev-high">{text} ({esc(t("risky", lang))}: '
                f"{esc(p.risky_rule)})</span>"
            )
        shown.append(text)
    return "<br>".join(shown) or esc(t("none", lang))


def _row(device: LanDeviceRow, lang: Lang) -> list[str]:
    return [
        "<br>".join(esc(ip) for ip in device.ips),
        esc(device.mac or t("unknown", lang)),
        esc(device.vendor or t("unknown", lang)),
        _ports(device, lang),
        esc(date_text(device.first_seen, lang)),
        esc(date_text(device.last_seen, lang)),
        esc(", ".join(device.seen_by)),
    ]


def _risky(device: LanDeviceRow) -> bool:
    return any(p.risky_rule for p in device.ports)


def lan_section(audit: AgencyAudit, lang: Lang, detail_rows: int | None = None) -> str:
    lan = audit.lan
    title = f"<h3>{esc(t('lan', lang))}</h3>"
    failed = (
        f"<p>{esc(t('lan_failed', lang))}: {esc(', '.join(lan.failed_sweeps))}</p>"
        if lan.failed_sweeps
        else ""
    )
    if not lan.assessed:
        return f"{title}<p>{esc(t('lan_not_assessed', lang))}</p>{failed}"
    counts = [
        [esc(t("lan_sweeping", lang)), esc(", ".join(lan.sweeping_hosts))],
        [esc(t("lan_devices", lang)), str(lan.devices)],
        [esc(t("lan_managed", lang)), str(lan.managed)],
        [esc(t("lan_unmanaged", lang)), str(lan.unmanaged)],
        [esc(t("lan_risky", lang)), str(lan.risky_unmanaged)],
    ]
    devices = list(lan.unmanaged_devices)
    note = ""
    if detail_rows is not None and len(devices) > detail_rows:
        # Risky first (stable: IPv4 order within each), then back to IPv4 order.
        kept = {id(d) for d in sorted(devices, key=lambda d: not _risky(d))[:detail_rows]}
        note = t("lan_cut", lang).format(
            shown=number_text(detail_rows, lang, 0), total=number_text(len(devices), lang, 0)
        )
        devices = [d for d in devices if id(d) in kept]
    listed = (
        table([t(k, lang) for k in DEVICE_KEYS], (_row(d, lang) for d in devices))
        if devices
        else f"<p>{esc(t('none', lang))}</p>"
    )
    return (
        title
        + table([t("lan", lang), ""], counts)
        + failed
        + f"<p>{esc(t('lan_note', lang))}</p>"
        + (f"<p>{esc(note)}</p>" if note else "")
        + listed
    )
