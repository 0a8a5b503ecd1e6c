"""Message and key templates: `{dotted.path}` substitution and nothing else.

No format specs, no attribute access, no evaluation: a template can only read facts.
`{{` and `}}` produce literal braces. Inside a quantifier, names are read from the
item; `$.path` reads the document root and `params.name` a rule parameter.

A message is rendered in a language, and its values read as that language writes
them: an RFC 3339 time as `HH:MM dd/mm/yyyy (giờ quốc tế)` or `yyyy-mm-dd HH:MM UTC`,
a fractional number with a decimal comma in Vietnamese. Keys are rendered without a
language and keep every value as the facts hold it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.errors import RulesError

_NAME = re.compile(r"^\.$|^(\$\.)?[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
MAX_RENDERED_VALUE = 512
_ESCAPES = {"{{": "{", "}}": "}"}


class TemplateError(RulesError):
    """A template is malformed (unbalanced brace, bad placeholder name)."""


def placeholders(template: str) -> list[str]:
    """Names used by `template`; raises TemplateError if it is malformed."""
    names: list[str] = []
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in _ESCAPES:
            continue
        name = match.group(1)
        if name is None:
            offset = match.start()
            raise TemplateError(
                f"unbalanced '{token}' at offset {offset} (write {{{{ or }}}} for a literal brace)"
            )
        if not _NAME.match(name):
            raise TemplateError(f"placeholder {{{name}}} is not a dotted path")
        names.append(name)
    return names


# Words for JSON's true/false/null in a sentence a person reads. Item keys are
# rendered without a language and keep the JSON words, so keys never depend on it.
_WORDS = {
    "vi": {True: "có", False: "không", None: "không rõ"},
    "en": {True: "yes", False: "no", None: "unknown"},
    None: {True: "true", False: "false", None: "null"},
}


# The facts' timestamp (facts-v1 `timestamp`: UTC, `Z`), also accepting an offset
# so a rule's own parameter written `+07:00` reads in UTC like every other time.
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))",
    re.IGNORECASE,
)
# One wording for a time everywhere a person reads one: rule messages here, and the
# collector's reports through `time_text` (server/reports/text.py datetime_text).
# Formatted by hand: strftime's %Y does not pad years before 1000 on glibc.
_TIME_PATTERNS = {
    "vi": "{h:02d}:{mi:02d} {d:02d}/{mo:02d}/{y:04d} (giờ quốc tế)",
    "en": "{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d} UTC",
}


def display(value: Any, lang: str | None) -> str:
    """How a fact's value reads in a rendered template."""
    if type(value) is str:  # the common case, decided before the words are looked up
        # Cheap test first: most strings are names and paths, never times.
        if lang is not None and len(value) >= 20 and value[10:11] in ("T", "t"):
            moment = _time(value, lang)
            if moment is not None:
                return moment
        return value if len(value) <= MAX_RENDERED_VALUE else value[:MAX_RENDERED_VALUE] + "…"
    words = _WORDS.get(lang, _WORDS[None])
    if isinstance(value, bool) or value is None:
        return words[value]
    if isinstance(value, list | tuple):
        return ", ".join(display(v, lang) for v in value)
    if isinstance(value, float) and lang is not None:
        return _number(value, lang)
    text = str(value)
    return text if len(text) <= MAX_RENDERED_VALUE else text[:MAX_RENDERED_VALUE] + "…"


def _time(value: str, lang: str) -> str | None:
    """`value` written as `lang` writes a time, in UTC, to the minute; None when it is
    not an RFC 3339 timestamp, and then the caller shows the string as it is."""
    match = _TIMESTAMP.fullmatch(value)
    pattern = _TIME_PATTERNS.get(lang)
    if match is None or pattern is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.group(*range(1, 7)))
    offset = timedelta(0)
    if match.group(7):
        offset = timedelta(hours=int(match.group(8)), minutes=int(match.group(9)))
        offset = offset if match.group(7) == "+" else -offset
    try:
        # second 60 (a leap second) reads as :59, since datetime has no 60th second
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
        moment -= offset
    except (ValueError, OverflowError):
        # shaped like a time but not one (month 13, or before year 1 once in UTC):
        # the caller shows the string as the facts hold it
        return None
    return time_text(moment, lang)


def time_text(moment: datetime, lang: str) -> str:
    """`moment` (UTC) as `lang` writes a time, to the minute: the wording of rule
    messages and of the collector's reports alike."""
    return _TIME_PATTERNS[lang].format(
        y=moment.year, mo=moment.month, d=moment.day, h=moment.hour, mi=moment.minute
    )


def _number(value: float, lang: str) -> str:
    """A measured number for a person: at most two decimals, no trailing zeros, and a
    decimal comma in Vietnamese (0.5 days reads `0,5`; 12.0 reads `12`)."""
    if not math.isfinite(value):  # NaN and infinities never come from JSON facts
        return str(value)
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace(".", ",") if lang == "vi" else text


def render(template: str, lookup: Callable[[str], Any], lang: str | None = None) -> str:
    """Substitute each placeholder with `lookup(name)`; a missing name stays `{name}`.

    `lookup` raises KeyError for a name it cannot resolve; leaving the placeholder
    visible makes the gap obvious in a report instead of inventing a value.
    """

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in _ESCAPES:
            return _ESCAPES[token]
        name = match.group(1)
        if name is None:
            return token
        try:
            return display(lookup(name), lang)
        except KeyError:
            return token

    return _TOKEN.sub(substitute, template)


def template_parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """`template` parsed once for `render`'s callers that render it many times: each
    part is (literal text, None) or (the placeholder's own text, its name); rendering
    joins the literals with `display(value)` of each name, or its own text when the
    name cannot be read, which is what `render` does."""
    parts: list[tuple[str, str | None]] = []
    position = 0
    for match in _TOKEN.finditer(template):
        if match.start() > position:
            parts.append((template[position : match.start()], None))
        token, name = match.group(0), match.group(1)
        parts.append((_ESCAPES.get(token, token), None) if name is None else (token, name))
        position = match.end()
    if position < len(template):
        parts.append((template[position:], None))
    return tuple(parts)
