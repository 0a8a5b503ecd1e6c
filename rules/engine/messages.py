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


class Messages:
    """A rule's message in both languages: each placeholder read once for both."""

    __slots__ = ("en", "readers", "vi")

    def __init__(self, vi: str, en: str) -> None:
        names: dict[str, int] = {}
        readers: list[Reader] = []

        def indexed(template: str) -> tuple[tuple[str, int], ...]:
            parts = []
            for text, name in template_parts(template):
                if name is not None and name not in names:
                    names[name] = len(readers)
                    readers.append(_reader(name))
                parts.append((text, -1 if name is None else names[name]))
            return tuple(parts)

        self.vi, self.en = indexed(vi), indexed(en)
        self.readers = tuple(readers)

    def render(self, frame: Frame) -> tuple[str, str]:
        values = [read(frame) for read in self.readers]
        return _joined(self.vi, values, "vi"), _joined(self.en, values, "en")


def _joined(parts: tuple[tuple[str, int], ...], values: list[Any], lang: str) -> str:
    out: list[str] = []
    for text, index in parts:
        value = _UNREAD if index < 0 else values[index]
        out.append(text if value is _UNREAD else display(value, lang))
    return "".join(out)
