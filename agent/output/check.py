"""What `canhgac-agent check` prints: a table for people, JSON for programs.

The table is sorted so that what needs action comes first (fail, then error, by
severity) and every cell goes through `printable`, because messages are templates
filled with facts from the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent.output.terminal import printable
from rules.language.model import Severity
from rules.policy.scoring import Score
from rules.results import RuleResult, Status

_STATUS_ORDER = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.PASS: 2,
    Status.WAIVED: 3,
    Status.NOT_APPLICABLE: 4,
}

_LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "rule": "QUY TẮC",
        "severity": "MỨC ĐỘ",
        "status": "TRẠNG THÁI",
        "items": "SỐ MỤC",
        "message": "CHI TIẾT",
        Status.PASS: "đạt",
        Status.FAIL: "không đạt",
        Status.ERROR: "lỗi",
        Status.NOT_APPLICABLE: "không áp dụng",
        Status.WAIVED: "miễn trừ",
        Severity.CRITICAL: "nghiêm trọng",
        Severity.HIGH: "cao",
        Severity.MEDIUM: "trung bình",
        Severity.LOW: "thấp",
        Severity.INFO: "thông tin",
        "score": "Điểm tuân thủ cục bộ",
        "score_note": (
            "tính tại máy này, trọng số mặc định; điểm chính thức do máy chủ thu thập tính"
        ),
        "unknown": "chưa xác định",
        "more": "và {n} mục khác",
        "no_rules": "Không có quy tắc nào được đánh giá.",
    },
    "en": {
        "rule": "RULE",
        "severity": "SEVERITY",
        "status": "STATUS",
        "items": "ITEMS",
        "message": "DETAIL",
        Status.PASS: "pass",
        Status.FAIL: "fail",
        Status.ERROR: "error",
        Status.NOT_APPLICABLE: "not applicable",
        Status.WAIVED: "waived",
        Severity.CRITICAL: "critical",
        Severity.HIGH: "high",
        Severity.MEDIUM: "medium",
        Severity.LOW: "low",
        Severity.INFO: "info",
        "score": "Local compliance score",
        "score_note": (
            "computed on this host with default weights; the collector's score is authoritative"
        ),
        "unknown": "unknown",
        "more": "and {n} more",
        "no_rules": "No rules were evaluated.",
    },
}


def label(lang: str, key: str) -> str:
    return _LABELS["en" if lang == "en" else "vi"][key]


def sort_results(results: Iterable[RuleResult]) -> list[RuleResult]:
    return sorted(results, key=lambda r: (_STATUS_ORDER[r.status], -r.severity.rank, r.rule_id))


def summary_message(result: RuleResult, lang: str) -> str:
    """What a row says: on fail and error rows the first item's message (else the first
    error, else the title); on other rows nothing, since a passing rule's title ("Telnet
    service exposed") reads like a problem."""
    if result.status not in (Status.FAIL, Status.ERROR):
        return "-"
    if result.items:
        text = result.items[0].message.get(lang)
        if len(result.items) > 1:
            text += f" ({label(lang, 'more').format(n=len(result.items) - 1)})"
        return text
    if result.status is Status.ERROR and result.errors:
        return f"{result.title.get(lang)}: {result.errors[0]}"
    return result.title.get(lang)


def format_table(results: Sequence[RuleResult], lang: str) -> list[str]:
    if not results:
        return [label(lang, "no_rules")]
    header = [label(lang, k) for k in ("rule", "severity", "status", "items", "message")]
    rows = [
        [
            printable(r.rule_id),
            label(lang, r.severity),
            label(lang, r.status),
            str(len(r.items)),
            # One line per rule: a newline in a message must not break the table.
            printable(summary_message(r, lang)),
        ]
        for r in sort_results(results)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in [header, *rows]
    ]


def format_score(score: Score, lang: str) -> str:
    ratio = label(lang, "unknown") if score.ratio is None else f"{score.ratio * 100:.1f}%"
    counts = ", ".join(
        f"{label(lang, status)} {count}"
        for status, count in (
            (Status.PASS, score.passed),
            (Status.FAIL, score.failed),
            (Status.ERROR, score.errors),
            (Status.NOT_APPLICABLE, score.not_applicable),
            (Status.WAIVED, score.waived),
        )
    )
    return f"{label(lang, 'score')}: {ratio} ({counts})\n({label(lang, 'score_note')})"


def score_dict(score: Score) -> dict[str, Any]:
    return {
        "ratio": score.ratio,
        "passed": score.passed,
        "failed": score.failed,
        "errors": score.errors,
        "not_applicable": score.not_applicable,
        "waived": score.waived,
        "failing_by_severity": {
            severity.value: score.failing_by_severity.get(severity, 0) for severity in Severity
        },
    }


def fails_at_or_above(results: Iterable[RuleResult], threshold: Severity) -> bool:
    return any(r.status is Status.FAIL and r.severity.rank >= threshold.rank for r in results)


def errors_at_or_above(results: Iterable[RuleResult], threshold: Severity) -> bool:
    """A rule that counts for `--fail-on` could not be evaluated: never a silent success."""
    return any(r.status is Status.ERROR and r.severity.rank >= threshold.rank for r in results)
