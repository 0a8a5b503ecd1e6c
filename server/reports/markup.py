"""The two HTML building blocks every part of the audit page uses: `esc` (every value
a user did not write goes through it) and `table`."""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator

from server.reports.text import inert


def esc(value: str) -> str:
    """Text as inert HTML: control and bidirectional characters made visible, then
    escaped (quotes included, so it is safe in attributes too)."""
    return html.escape(inert(value), quote=True)


def table(head: Iterable[str], body: Iterable[Iterable[str]]) -> str:
    """`head` is fixed text (escaped here); `body` cells are already-escaped HTML."""
    return "".join(table_parts(head, body))


def table_parts(head: Iterable[str], body: Iterable[Iterable[str]]) -> Iterator[str]:
    """`table` a row at a time, for bodies read as a stream."""
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    yield f"<table><thead><tr>{cells}</tr></thead><tbody>"
    for row in body:
        yield "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
    yield "</tbody></table>"
