"""Escaping untrusted text before it reaches a terminal."""

from __future__ import annotations

import pytest

from rules.terminal import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("Máy chủ đạt chuẩn", "Máy chủ đạt chuẩn"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("del\x7f", "del\\x7f"),
        ("bidi\u202eexe.txt", "bidi\\u202eexe.txt"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("sep\u2028x", "sep\\u2028x"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("nbsp\u00a0ok", "nbsp\u00a0ok"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_non_strings_are_converted() -> None:
    assert printable(42) == "42"
    assert printable(ValueError("bad\x1b")) == "bad\\x1b"
