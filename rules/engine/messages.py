"""Item keys and messages rendered from templates parsed once per rule.

Each placeholder is bound at compile time to a reader of the frame: `params.x` reads
the rule's parameters, `$.path` the document, any other name the current item (or
the document outside a quantifier). A name that cannot be read keeps its
placeholder visible, exactly as `rules.language.templates.render` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.engine.compiler import Frame, PathMissingError, compile_path
from rules.language.templates import display, template_parts

_UNREAD = object()
Reader = Callable[[Frame], Any]


def _reader(name: str) -> Reader:
    if name.startswith("params."):
        parameter = name.removeprefix("params.")
        return lambda frame: frame.params.get(parameter, _UNREAD)
    get = compile_path(name)

    def read(frame: Frame) -> Any:
        try:
            return get(frame)
        except PathMissingError:
            return _UNREAD

    return read


class Template:
    """A key or message template, rendered in a frame."""

    __slots__ = ("constant", "parts")

    def __init__(self, template: str) -> None:
        self.parts = tuple(
            (text, None if name is None else _reader(name))
            for text, name in template_parts(template)
        )
        # A template without placeholders is the same text every time.
        self.constant = None if any(read for _, read in self.parts) else template_text(self)

    def render(self, frame: Frame, lang: str | None = None) -> str:
        if self.constant is not None:
            return self.constant
        out: list[str] = []
        for text, read in self.parts:
            if read is None:
                out.append(text)
                continue
            value = read(frame)
            out.append(text if value is _UNREAD else display(value, lang))
        return "".join(out)


def template_text(template: Template) -> str:
    return "".join(text for text, _ in template.parts)
