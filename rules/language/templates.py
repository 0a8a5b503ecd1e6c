"""Message and key templates: `{dotted.path}` substitution and nothing else.

No format specs, no attribute access, no evaluation: a template can only read facts.
`{{` and `}}` produce literal braces. Inside a quantifier, names are read from the
item; `$.path` reads the document root and `params.name` a rule parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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


def display(value: Any, lang: str | None) -> str:
    """How a fact's value reads in a rendered template."""
    if type(value) is str:  # the common case, decided before the words are looked up
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
