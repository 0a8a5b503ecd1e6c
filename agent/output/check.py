"""What `canhgac-agent check` prints: a report an administrator can act on, JSON for
programs.

What needs action comes first (failing rules, then rules that could not be checked,
by severity); each failing rule carries the command that fixes it on this host's OS
family when the rule has one, one shell word per place a line breaks (a trailing
backslash continues it, so it pastes as it is), then the rule's remediation; passing rules are
counted, not listed, unless asked for (`--all`). Every line fits the terminal width
(wrapped at spaces; a word is cut only when it is longer than a whole line). Every
host-supplied string goes through `printable`, because messages are templates filled
with facts from the host. Vietnamese mode says everything in Vietnamese, with a
decimal comma.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.language.model import Localized, RuleSet, Severity, os_family
from rules.policy.scoring import Score
from rules.results import RuleResult, Status
from rules.terminal import printable

_STATUS_ORDER = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.PASS: 2,
    Status.WAIVED: 3,
    Status.NOT_APPLICABLE: 4,
}
ITEMS_SHOWN = 3  # item messages shown per failing rule before "and N more"
MIN_WIDTH = 40  # below this, wrapping would leave a word per line; lines may overflow
INDENT = "    "
COMMAND = "canhgac-agent check"
JSON_COMMAND = f"{COMMAND} --format json"
ALL_COMMAND = f"{COMMAND} --all"

_LABELS: dict[str, dict[str, str]] = {
    "vi": {
        Status.PASS: "đạt",
        Status.FAIL: "không đạt",
        Status.ERROR: "không kiểm tra được",
        Status.NOT_APPLICABLE: "không áp dụng",
        Status.WAIVED: "miễn trừ",
        Severity.CRITICAL: "nghiêm trọng",
        Severity.HIGH: "cao",
        Severity.MEDIUM: "trung bình",
        Severity.LOW: "thấp",
        Severity.INFO: "thông tin",
        "severity": "mức {s}",
        "fix": "Khắc phục:",
        "fix_here": "Lệnh khắc phục trên máy này:",
        "why": "Không kiểm tra được:",
        "more": "... và {n} mục khác (xem: {command})",
        "heading_fail": "Quy tắc không đạt: {n}",
        "heading_error": "Quy tắc không kiểm tra được: {n}",
        "heading_other": "Các quy tắc còn lại: {n}",
        "nothing_fails": "Không có quy tắc nào không đạt.",
        "rest": "{counts} (liệt kê: {command}).",
        "rest_listed": "{counts}.",
        "score": "Điểm tuân thủ cục bộ",
        "score_note": (
            "tính tại máy này, trọng số mặc định; điểm chính thức do máy chủ thu thập tính"
        ),
        "unknown": "chưa xác định",
        "no_rules": "Không có quy tắc nào được đánh giá.",
        "no_remediation": "quy tắc không có hướng dẫn khắc phục",
    },
    "en": {
        Status.PASS: "pass",
        Status.FAIL: "fail",
        Status.ERROR: "could not be checked",
        Status.NOT_APPLICABLE: "not applicable",
        Status.WAIVED: "waived",
        Severity.CRITICAL: "critical",
        Severity.HIGH: "high",
        Severity.MEDIUM: "medium",
        Severity.LOW: "low",
        Severity.INFO: "info",
        "severity": "{s}",
        "fix": "Fix:",
        "fix_here": "Fix on this host:",
        "why": "Could not be checked:",
        "more": "... and {n} more (see: {command})",
        "heading_fail": "Failing rules: {n}",
        "heading_error": "Rules that could not be checked: {n}",
        "heading_other": "Other rules: {n}",
        "nothing_fails": "No rule fails.",
        "rest": "{counts} (listed by: {command}).",
        "rest_listed": "{counts}.",
        "score": "Local compliance score",
        "score_note": (
            "computed on this host with default weights; the collector's score is authoritative"
        ),
        "unknown": "unknown",
        "no_rules": "No rules were evaluated.",
        "no_remediation": "the rule gives no remediation",
    },
}

# Facts domains in words (the error explanations name the domain a rule needed).
_DOMAINS: dict[str, Localized] = {
    "host": Localized("thông tin máy chủ", "host information"),
    "packages": Localized("gói phần mềm", "installed packages"),
    "updates": Localized("bản cập nhật", "pending updates"),
    "certificates": Localized("chứng thư số", "certificates"),
    "listening": Localized("cổng đang mở", "listening ports"),
    "services": Localized("dịch vụ", "services"),
    "ssh": Localized("cấu hình SSH", "SSH configuration"),
    "accounts": Localized("tài khoản", "accounts"),
    "firewall": Localized("tường lửa", "firewall"),
    "time": Localized("đồng bộ thời gian", "time synchronisation"),
    "malware_protection": Localized("phòng chống mã độc", "malware protection"),
    "logging": Localized("ghi nhật ký", "logging"),
    "sysctl": Localized("tham số nhân hệ điều hành", "kernel parameters"),
    "auth_policy": Localized("chính sách mật khẩu và đăng nhập", "password and login policy"),
    "audit": Localized("ghi vết hệ thống", "system auditing"),
    "file_permissions": Localized("quyền truy cập tệp", "file permissions"),
    "core_dumps": Localized("tệp kết xuất bộ nhớ", "core dumps"),
    "mounts": Localized("phân vùng và tùy chọn gắn kết", "partitions and mount options"),
    "brute_force": Localized("chống dò mật khẩu", "brute-force protection"),
    "deleted_libraries": Localized(
        "tiến trình dùng thư viện đã bị thay thế", "processes using replaced libraries"
    ),
    "package_sources": Localized("nguồn cài đặt phần mềm", "package sources"),
    "home_directories": Localized("thư mục nhà của người dùng", "home directories"),
    "log_files": Localized("quyền truy cập tệp nhật ký", "log file permissions"),
    "file_integrity": Localized("kiểm tra toàn vẹn tệp", "file integrity checking"),
    "discovery": Localized("dò tìm thiết bị trong mạng", "network discovery"),
    "vulnerabilities": Localized("lỗ hổng đã biết của các gói", "known vulnerabilities"),
}
_KINDS: dict[str, Localized] = {
    "failed": Localized("việc thu thập bị lỗi", "the collection failed"),
    "timeout": Localized("việc thu thập quá thời gian cho phép", "the collection timed out"),
    "permission": Localized(
        "không đủ quyền đọc (hãy chạy với quyền root)", "permission denied (run it as root)"
    ),
    "unsupported": Localized("máy này không hỗ trợ", "not supported on this host"),
    "skipped": Localized("việc thu thập bị bỏ qua", "the collection was skipped"),
}
_COLLECTOR = re.compile(r"collector '(?P<domain>[a-z_]+)' (?P<kind>[a-z]+):")
# Domains only the collector derives: a local `check` cannot have them.
COLLECTOR_DOMAINS = frozenset({"vulnerabilities"})
_NO_DOMAIN = re.compile(r"the facts document has no '(?P<domain>[a-z_]+)' domain")
_MISSING = re.compile(r"(?:fact path|item field) '(?P<path>[^']*)' is missing")
# A null where a list was needed: the collector reported the value as unknown (e.g.
# /proc/<pid>/maps unreadable), which the collector's note explains.
_UNKNOWN = re.compile(r"'\$?\.?(?P<path>[^']*)' is a null, a quantifier needs a list")


def label(lang: str, key: str) -> str:
    return _LABELS["en" if lang == "en" else "vi"][key]


def number(value: float, lang: str) -> str:
    """One decimal, with a decimal comma in Vietnamese."""
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang != "en" else text


def sort_results(results: Iterable[RuleResult]) -> list[RuleResult]:
    return sorted(results, key=lambda r: (_STATUS_ORDER[r.status], -r.severity.rank, r.rule_id))


@dataclass(frozen=True)
class Remedy:
    """How to fix a failing rule: the rule's command for this host's OS family (None
    when it has none for it) and its remediation text, which explains every family."""

    text: Localized
    command: str | None = None


def remediations(ruleset: RuleSet, facts: Mapping[str, Any] | None = None) -> dict[str, Remedy]:
    """Each rule's remedy by rule id (rule ids are unique across packs), with the fix
    command for the OS family of `facts` (`host.os.family`)."""
    family = os_family(facts.get("host")) if facts is not None else None
    return {
        rule.id: Remedy(rule.remediation, rule.fix_for(family))
        for pack in ruleset.packs
        for rule in pack.rules
    }


def why_not_checked(result: RuleResult, lang: str) -> str:
    """Why a rule is in error, in words: the engine's messages are for rule authors."""
    text = " ".join(result.errors)
    if found := _COLLECTOR.search(text):
        domain, kind = found["domain"], found["kind"]
        what = _domain(domain, lang)
        how = _KINDS.get(kind, _KINDS["failed"]).get(lang)
        if lang == "en":
            return f"the agent could not read the {what}: {how}."
        return f"tác tử không đọc được {what}: {how}."
    if found := _NO_DOMAIN.search(text):
        what = _domain(found["domain"], lang)
        if found["domain"] in COLLECTOR_DOMAINS:
            # Derived on the collector from imported feeds (docs/vulnerabilities.md).
            if lang == "en":
                return f"{what} are judged on the collector, which holds the feeds."
            return f"{what} được đánh giá trên máy chủ thu thập, nơi có dữ liệu lỗ hổng."
        if lang == "en":
            return f"the facts contain no {what} (an older agent, or a facts file without it)."
        return f"dữ liệu thu thập không có {what} (tác tử cũ hơn, hoặc tệp dữ liệu thiếu phần này)."
    if (why := _why_value(text, lang)) is not None:
        return why
    if lang == "en":
        return "the facts do not have the form this rule expects (details: --format json)."
    return "dữ liệu thu thập không đúng dạng quy tắc cần (chi tiết: --format json)."


def _why_value(text: str, lang: str) -> str | None:
    """A value the rule needs: missing, unknown (null) or a parameter without one."""
    if found := _MISSING.search(text):
        what = _domain(found["path"].removeprefix("$.").split(".", 1)[0], lang)
        if lang == "en":
            return f"a value this rule needs is missing from the {what} facts."
        return f"thiếu một giá trị mà quy tắc cần trong dữ liệu về {what}."
    if found := _UNKNOWN.search(text):
        what = _domain(found["path"].split(".", 1)[0], lang)
        if lang == "en":
            return f"the facts on {what} are unknown on this host (the agent could not read them)."
        return f"dữ liệu về {what} trên máy này không xác định (tác tử không đọc được)."
    if "has no value" in text:
        if lang == "en":
            return "a parameter of the rule has no value (check the rule pack)."
        return "một tham số của quy tắc chưa có giá trị (kiểm tra gói quy tắc)."
    return None


def note_line(domain: str, kind: str, reason: str, lang: str, partial: bool = False) -> str:
    """A collector that failed, as `check` notes it on stderr. In English the host's
    own words (the reason) follow; in Vietnamese only the framing, since the reason
    is English system text. `partial`: the domain was reported, only part is missing
    (e.g. endpoints not probed while every certificate file was read)."""
    if lang == "en":
        return f"note: {printable(domain)}: {printable(kind)}: {printable(reason)}"
    how = _KINDS.get(kind, _KINDS["failed"]).vi
    if partial:
        return f"lưu ý: tác tử chỉ đọc được một phần {_domain(domain, 'vi')}: {how}"
    return f"lưu ý: tác tử không đọc được {_domain(domain, 'vi')}: {how}"


def note_lines(note: str, width: int) -> list[str]:
    """A note wrapped to the terminal's width like the report, continued indented."""
    return _wrap(note, width, "", "  ")


def _domain(name: str, lang: str) -> str:
    known = _DOMAINS.get(name)
    return known.get(lang) if known else printable(name)


@dataclass(frozen=True)
class Layout:
    """How the report is laid out: the terminal's width, whether to list every rule,
    and the command that made it (the "and N more" hints extend it, so they show the
    same facts and rules)."""

    width: int = 80
    show_all: bool = False
    command: str = COMMAND


def check_command(facts: Path | None, rules: Sequence[Path], config: Path | None, lang: str) -> str:
    """`canhgac-agent check` with the options that choose what is checked, quoted for
    a shell and safe for a terminal."""
    words = [COMMAND]
    if config is not None:
        words += ["--config", shlex.quote(str(config))]
    for path in rules:
        words += ["--rules", shlex.quote(str(path))]
    if facts is not None:
        words += ["--facts", shlex.quote(str(facts))]
    if lang == "en":
        words += ["--lang", "en"]
    return printable(" ".join(words))


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=max(width, MIN_WIDTH),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,  # rule ids and package names contain hyphens
        break_long_words=True,  # only words longer than a whole line are cut
    ) or [first.rstrip()]


def _shell_words(command: str) -> list[str]:
    """The command split at the spaces a shell splits at (outside quotes), quotes kept:
    a line break with a backslash is safe only there."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    escaped = False
    for char in command:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == " ":
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def _command_lines(command: str, width: int, indent: str) -> list[str]:
    """A command on lines of at most `width`: broken between shell words, each broken
    line ending in ` \\` so the lines paste into a shell as one command. A word longer
    than a whole line is broken inside, as `_wrap` breaks text (that command no longer
    pastes as it is; the shipped fixes have no word that long at 80 columns)."""
    room = max(width, MIN_WIDTH) - len(indent) - 2  # the " \\" continuation
    lines: list[str] = []
    line = ""
    for word in _shell_words(command):
        if len(word) > room:
            # Broken at its own spaces (inside quotes), cut only where it has none.
            pieces = textwrap.wrap(word, room, break_on_hyphens=False) or [word]
            if line:
                lines.append(line)
            lines += pieces[:-1]
            line = pieces[-1]
        elif line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return [indent + text + " \\" for text in lines[:-1]] + [indent + lines[-1]]


def _head(result: RuleResult, lang: str, width: int) -> list[str]:
    status = label(lang, result.status).upper()
    severity = label(lang, "severity").format(s=label(lang, result.severity))
    title = printable(result.title.get(lang))
    return _wrap(f"[{status}, {severity}] {printable(result.rule_id)}: {title}", width, "", INDENT)


def _failing_block(
    result: RuleResult, fixes: Mapping[str, Remedy], lang: str, layout: Layout
) -> list[str]:
    width = layout.width
    lines = _head(result, lang, width)
    for item in result.items[:ITEMS_SHOWN]:
        lines += _wrap(printable(item.message.get(lang)), width, INDENT + "- ", INDENT + "  ")
    hidden = len(result.items) - ITEMS_SHOWN
    if hidden > 0:
        more = label(lang, "more").format(n=hidden, command=f"{layout.command} --format json")
        lines += _wrap(more, width, INDENT + "  ", INDENT + "  ")
    fix = fixes.get(result.rule_id)
    if fix is not None and fix.command is not None:
        lines.append(INDENT + label(lang, "fix_here"))
        lines += _command_lines(printable(fix.command), width, INDENT + "  ")
    fix_text = printable(fix.text.get(lang)) if fix else label(lang, "no_remediation")
    lines += _wrap(f"{label(lang, 'fix')} {fix_text}", width, INDENT, INDENT + "  ")
    return lines


def _error_block(result: RuleResult, lang: str, width: int) -> list[str]:
    why = f"{label(lang, 'why')} {why_not_checked(result, lang)}"
    return _head(result, lang, width) + _wrap(why, width, INDENT, INDENT + "  ")


def _counts(results: Sequence[RuleResult], lang: str) -> str:
    counted = [
        f"{label(lang, status)}: {sum(1 for r in results if r.status is status)}"
        for status in (Status.PASS, Status.NOT_APPLICABLE, Status.WAIVED)
    ]
    return "; ".join(counted)


def format_report(
    results: Sequence[RuleResult],
    fixes: Mapping[str, Remedy],
    lang: str,
    layout: Layout = Layout(),
) -> list[str]:
    """The lines `check` prints before the score."""
    if not results:
        return [label(lang, "no_rules")]
    ordered = sort_results(results)
    failing = [r for r in ordered if r.status is Status.FAIL]
    errors = [r for r in ordered if r.status is Status.ERROR]
    others = [r for r in ordered if r.status not in (Status.FAIL, Status.ERROR)]
    width = layout.width
    lines: list[str] = []
    if failing:
        lines.append(label(lang, "heading_fail").format(n=len(failing)))
        for result in failing:
            lines += ["", *_failing_block(result, fixes, lang, layout)]
    else:
        lines.append(label(lang, "nothing_fails"))
    if errors:
        lines += ["", label(lang, "heading_error").format(n=len(errors))]
        for result in errors:
            lines += ["", *_error_block(result, lang, width)]
    lines.append("")
    if layout.show_all and others:
        lines.append(label(lang, "heading_other").format(n=len(others)))
        for result in others:
            lines += _head(result, lang, width)
        lines += _wrap(
            label(lang, "rest_listed").format(counts=_counts(others, lang)), width, "", ""
        )
    else:
        command = f"{layout.command} --all"
        rest = label(lang, "rest").format(counts=_counts(others, lang), command=command)
        lines += _wrap(rest, width, "", "")
    return lines


def format_score(score: Score, lang: str, width: int = 80) -> list[str]:
    ratio = label(lang, "unknown") if score.ratio is None else f"{number(score.ratio * 100, lang)}%"
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
    return _wrap(f"{label(lang, 'score')}: {ratio} ({counts})", width, "", "  ") + _wrap(
        f"({label(lang, 'score_note')})", width, "", " "
    )


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
