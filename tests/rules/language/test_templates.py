from __future__ import annotations

from typing import Any

import pytest

from rules.language.templates import TemplateError, placeholders, render

VALUES: dict[str, Any] = {
    "port": 23,
    "address": "0.0.0.0",
    "host.name": "web01",
    "up": True,
    "none": None,
}


def lookup(name: str) -> Any:
    return VALUES[name]


def test_substitutes_dotted_paths() -> None:
    assert render("{address}:{port} on {host.name}", lookup) == "0.0.0.0:23 on web01"


def test_booleans_and_null_render_as_json_words_without_a_language() -> None:
    assert render("{up}/{none}", lookup) == "true/null"


def test_booleans_and_null_read_naturally_in_each_language() -> None:
    assert render("{up}/{none}", lookup, "vi") == "có/không rõ"
    assert render("{up}/{none}", lookup, "en") == "yes/unknown"


def test_missing_name_stays_visible() -> None:
    assert render("pid {pid}", lookup) == "pid {pid}"


def test_escaped_braces() -> None:
    assert render("{{literal}} {port}", lookup) == "{literal} 23"


def test_no_format_spec_or_attribute_access() -> None:
    with pytest.raises(TemplateError):
        placeholders("{port:>10}")
    with pytest.raises(TemplateError):
        placeholders("{port.__class__}x{0!r}")


@pytest.mark.parametrize("bad", ["{port", "port}", "a { b"])
def test_unbalanced(bad: str) -> None:
    with pytest.raises(TemplateError, match="unbalanced"):
        placeholders(bad)


def test_long_values_are_cut() -> None:
    text = render("{v}", lambda _name: "x" * 2000)
    assert len(text) < 600
    assert text.endswith("…")


@pytest.mark.parametrize(
    ("value", "vi", "en"),
    [(0.5, "0,5", "0.5"), (12.0, "12", "12"), (3.14159, "3,14", "3.14"), (-0.001, "0", "0")],
)
def test_numbers_read_naturally_in_each_language(value: float, vi: str, en: str) -> None:
    """Vietnamese uses a decimal comma; ages are not shown to the hundredth of a unit."""
    assert render("{x}", {"x": value}.__getitem__, "vi") == vi
    assert render("{x}", {"x": value}.__getitem__, "en") == en
    # Item keys are rendered without a language and keep the value as it is.
    assert render("{x}", {"x": value}.__getitem__) == str(value)
