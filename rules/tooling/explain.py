"""Rules in words: what `rules explain` prints for a person reading a rule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rules.language.model import (
    AllOf,
    AnyOf,
    Expr,
    Leaf,
    Not,
    OsFamily,
    ParamRef,
    Quantified,
    Quantifier,
    Rule,
    Severity,
)
from rules.policy.frameworks import Framework
from rules.terminal import printable

_QUANTIFIER_WORDS = {
    "en": {
        Quantifier.FOR_ALL: "every item of",
        Quantifier.FOR_ANY: "at least one item of",
        Quantifier.FOR_NONE: "no item of",
    },
    "vi": {
        Quantifier.FOR_ALL: "mọi phần tử của",
        Quantifier.FOR_ANY: "ít nhất một phần tử của",
        Quantifier.FOR_NONE: "không phần tử nào của",
    },
}
_WORDS = {
    "en": {
        "and": "AND",
        "or": "OR",
        "not": "NOT",
        "where": "where",
        "satisfies": "satisfies",
        "param": "parameter",
    },
    "vi": {
        "and": "VÀ",
        "or": "HOẶC",
        "not": "KHÔNG",
        "where": "với",
        "satisfies": "thỏa mãn",
        "param": "tham số",
    },
}
# The Vietnamese page says everything in Vietnamese, severities and notes included
# (the same words as the agent's `check`).
_SEVERITY_WORDS = {
    "en": {severity: severity.value for severity in Severity},
    "vi": {
        Severity.CRITICAL: "nghiêm trọng",
        Severity.HIGH: "cao",
        Severity.MEDIUM: "trung bình",
        Severity.LOW: "thấp",
        Severity.INFO: "thông tin",
    },
}
_UNVERIFIED = {"en": "unverified", "vi": "chưa xác minh"}
_HEADINGS = {
    "en": (
        "Severity",
        "Pack",
        "Defined at",
        "Checks",
        "Applies when",
        "Why",
        "How to fix",
        "Parameters",
        "References",
        "Frameworks",
        "Fix commands by OS family",
    ),
    "vi": (
        "Mức độ",
        "Gói",
        "Định nghĩa tại",
        "Kiểm tra",
        "Áp dụng khi",
        "Lý do",
        "Khắc phục",
        "Tham số",
        "Tham chiếu",
        "Khung tiêu chuẩn",
        "Lệnh khắc phục theo họ hệ điều hành",
    ),
}


def _value(value: Any, params: dict[str, Any], lang: str) -> str:
    if isinstance(value, ParamRef):
        current = json.dumps(params.get(value.name), ensure_ascii=False, default=list)
        return f"{_WORDS[lang]['param']} {value.name} (= {current})"
    return json.dumps(value, ensure_ascii=False, default=list)


def describe(expr: Expr, params: dict[str, Any], lang: str) -> str:
    words = _WORDS[lang]
    if isinstance(expr, Leaf):
        text = f"{expr.path} {expr.op.value}"
        return text if expr.value is None else f"{text} {_value(expr.value, params, lang)}"
    if isinstance(expr, AllOf | AnyOf):
        joiner = f" {words['and' if isinstance(expr, AllOf) else 'or']} "
        return "(" + joiner.join(describe(e, params, lang) for e in expr.items) + ")"
    if isinstance(expr, Not):
        return f"{words['not']} {describe(expr.item, params, lang)}"
    assert isinstance(expr, Quantified)
    where = f" {words['where']} {describe(expr.where, params, lang)}" if expr.where else ""
    return (
        f"{_QUANTIFIER_WORDS[lang][expr.quantifier]} {expr.source}{where} "
        f"{words['satisfies']} {describe(expr.assertion, params, lang)}"
    )


def explain_rule(rule: Rule, frameworks: Sequence[Framework], lang: str) -> str:
    (severity, pack, defined, checks, applies, why, fix, params_h, refs, fw, commands) = _HEADINGS[
        lang
    ]
    params = dict(rule.params)
    level = _SEVERITY_WORDS[lang][rule.severity]
    lines = [
        f"{rule.id}: {rule.title.get(lang)}",
        f"{severity}: {level}    {pack}: {rule.pack_id}    {defined}: {rule.source}",
        "",
        f"{checks}: {describe(rule.check, params, lang)}",
    ]
    if rule.applies_to is not None:
        lines.append(f"{applies}: {describe(rule.applies_to, params, lang)}")
    lines += [
        "",
        f"{why}:",
        f"  {rule.rationale.get(lang)}",
        "",
        f"{fix}:",
        f"  {rule.remediation.get(lang)}",
    ]
    if rule.fix:
        # Enum order, not the YAML's, so every rule lists families alike. Commands are
        # printed as is to be pasted, so only unsafe characters are escaped.
        lines += ["", f"{commands}:"]
        lines += [f"  {f.value}: {printable(rule.fix[f])}" for f in OsFamily if f in rule.fix]
    if params:
        lines += ["", f"{params_h}:"]
        lines += [
            f"  {k} = {json.dumps(v, ensure_ascii=False, default=list)}" for k, v in params.items()
        ]
    if rule.references:
        lines += ["", f"{refs}:"] + [f"  - {r}" for r in rule.references]
    mappings = [
        f"  - {f.id} {r.id}: {r.title.get(lang)}"
        + (f" ({_UNVERIFIED[lang]})" if r.confidence != "verified" else "")
        for f in frameworks
        for r in f.requirements_for(rule.id)
    ]
    if mappings:
        lines += ["", f"{fw}:", *mappings]
    return "\n".join(lines)
