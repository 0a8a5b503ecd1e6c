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


@pytest.mark.parametrize(
    ("value", "vi", "en"),
    [
        ("2026-11-30T20:52:58Z", "20:52 30/11/2026 (giờ quốc tế)", "2026-11-30 20:52 UTC"),
        # fractional seconds as the agent writes them (facts-v1 allows up to 9 digits)
        (
            "2026-03-01T07:05:09.123456789Z",
            "07:05 01/03/2026 (giờ quốc tế)",
            "2026-03-01 07:05 UTC",
        ),
        # an offset is read into UTC: 03:52 in Hanoi is 20:52 the day before
        ("2026-11-30T03:52:58+07:00", "20:52 29/11/2026 (giờ quốc tế)", "2026-11-29 20:52 UTC"),
        ("2026-12-31T23:30:00-01:00", "00:30 01/01/2027 (giờ quốc tế)", "2027-01-01 00:30 UTC"),
        ("0999-01-02T03:04:05Z", "03:04 02/01/0999 (giờ quốc tế)", "0999-01-02 03:04 UTC"),
    ],
)
def test_times_read_as_each_language_writes_a_date(value: str, vi: str, en: str) -> None:
    """dd/mm/yyyy in Vietnamese, ISO in English, both in UTC and saying so, exactly as
    the collector's reports write a time."""
    assert render("hết hạn vào {t}", {"t": value}.__getitem__, "vi") == f"hết hạn vào {vi}"
    assert render("expired on {t}", {"t": value}.__getitem__, "en") == f"expired on {en}"
    # Keys are rendered without a language: the value stays as the facts hold it.
    assert render("{t}", {"t": value}.__getitem__) == value


@pytest.mark.parametrize(
    "value",
    [
        "2026-13-30T20:52:58Z",  # no month 13
        "2026-02-30T20:52:58Z",  # no 30 February
        "2026-11-30T20:52:58",  # no zone: which time it is cannot be said
        "2026-11-30T20:52:58Z trailing",
        "0001-01-01T00:30:00+01:00",  # before year 1 once in UTC
        "/var/lib/aide/aide.db",
        "2026-11-30",
    ],
)
def test_strings_that_are_not_times_are_shown_as_they_are(value: str) -> None:
    for lang in ("vi", "en"):
        assert render("{t}", {"t": value}.__getitem__, lang) == value


def test_times_inside_a_list_are_each_written_as_a_time() -> None:
    values = {"t": ["2026-11-30T20:52:58Z", "sshd"]}
    assert render("{t}", values.__getitem__, "vi") == "20:52 30/11/2026 (giờ quốc tế), sshd"
