"""The catalogue and the value formats of the audit documents."""

from __future__ import annotations

from datetime import UTC, datetime

from server.reports.text import CATALOGUE, Lang, date_text, inert, number_text, percent_text


def test_catalogue_complete_in_both_languages() -> None:
    for key, (vi, en) in CATALOGUE.items():
        assert vi.strip() and en.strip(), key
        # A Vietnamese entry copied from the English one would be English in vi mode.
        assert vi != en, key


def test_vietnamese_formats() -> None:
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert date_text(moment, Lang.VI) == "01/03/2026"
    assert date_text(moment, Lang.EN) == "2026-03-01"
    assert number_text(12345.25, Lang.VI, 2) == "12.345,25"
    assert number_text(12345.25, Lang.EN, 2) == "12,345.25"
    assert percent_text(16 / 26, Lang.VI) == "61,5 %"
    assert percent_text(None, Lang.VI) == "Chưa xác định"


def test_inert_escapes_controls_and_bidi() -> None:
    assert inert("a\u202eb\x1b[31mc\u200fd") == "a\\u202eb\\u001b[31mc\\u200fd"
    assert inert("Hà Nội") == "Hà Nội"
