"""Inline SVG charts of the HTML document: findings by severity, the score trend,
requirement coverage. Plain SVG text (no script, nothing fetched); every label is
escaped by the caller's `esc`, numbers are formatted here."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from server.read.audit_views import SEVERITIES, FrameworkCompliance, TrendPoint
from server.reports.text import Lang, date_text, percent_text, t

Escape = Callable[[str], str]
SEVERITY_COLOURS = {
    "critical": "#8b0000",
    "high": "#d35400",
    "medium": "#f1c40f",
    "low": "#2980b9",
    "info": "#95a5a6",
}
COVERAGE_COLOURS = (("met", "#1b5e20"), ("not_met", "#8b0000"), ("not_assessed", "#9e9e9e"))


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}">{body}</svg>'
    )


def severity_bars(counts: dict[str, int], lang: Lang, esc: Escape) -> str:
    top = max([1, *counts.values()])
    bars = []
    for i, severity in enumerate(SEVERITIES):
        value = counts.get(severity.value, 0)
        width = 300 * value / top
        y = i * 22
        bars.append(
            f'<text x="0" y="{y + 14}" font-size="11">{esc(t(f"sev.{severity.value}", lang))}'
            f'</text><rect x="110" y="{y + 3}" width="{width:.1f}" height="14" '
            f'fill="{SEVERITY_COLOURS[severity.value]}"/>'
            f'<text x="{115 + width:.1f}" y="{y + 14}" font-size="11">{value}</text>'
        )
    return _svg(460, 22 * len(SEVERITIES), esc(t("open_by_severity", lang)), "".join(bars))


def score_trend(points: Sequence[TrendPoint], lang: Lang, esc: Escape) -> str:
    """Score (0-100 %) at each point; an unknown score is a gap, never a zero."""
    width, height, left, top = 500, 120, 40, 10
    # Room on the right for the last date's label (centred on its point).
    plot_w, plot_h = width - left - 40, height - top - 30
    step = plot_w / max(1, len(points) - 1)
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        f'<text x="0" y="{top + 8}" font-size="10">100 %</text>',
        f'<text x="0" y="{top + plot_h}" font-size="10">0 %</text>',
    ]
    previous: tuple[float, float] | None = None
    for i, point in enumerate(points):
        x = left + i * step
        parts.append(
            f'<text x="{x - 25:.1f}" y="{height - 5}" font-size="9">'
            f"{esc(date_text(point.at, lang))}</text>"
        )
        if point.score is None:
            previous = None
            continue
        y = top + plot_h * (1 - point.score)
        if previous is not None:
            parts.append(
                f'<line x1="{previous[0]:.1f}" y1="{previous[1]:.1f}" x2="{x:.1f}" '
                f'y2="{y:.1f}" stroke="#1565c0" stroke-width="2"/>'
            )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1565c0">'
            f"<title>{esc(percent_text(point.score, lang))}</title></circle>"
        )
        previous = (x, y)
    return _svg(width, height, esc(t("trend", lang)), "".join(parts))


def coverage_bar(framework: FrameworkCompliance, lang: Lang, esc: Escape) -> str:
    """One stacked bar: met, not met, not assessed, the rest, and not applicable."""
    total = max(1, len(framework.requirements))
    counts = {
        "met": framework.met,
        "not_met": framework.not_met,
        "not_assessed": framework.not_assessed,
        "not_applicable": framework.not_applicable,
    }
    x = 0.0
    parts = []
    # Not applicable (above the system's level) is drawn, light, so the bar still
    # spans every requirement of the framework.
    colours = (*COVERAGE_COLOURS, ("other", "#6a1b9a"), ("not_applicable", "#e0e0e0"))
    for key, colour in colours:
        value = counts.get(key, framework.other)
        width = 400 * value / total
        if width > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="16" fill="{colour}">'
                f"<title>{esc(t(key, lang))}: {value}</title></rect>"
            )
        x += width
    return _svg(400, 16, esc(t("coverage", lang)), "".join(parts))
