"""Inflating in a window: the JSON counts streamed window by window are those of the
whole text; over-limit bodies are refused from the stream; bodies past the kept
window come back whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from server.errors import PayloadTooLargeError
from server.ingest import inflate
from server.ingest.inflate import JSON_STRING, counts, gunzip_capped, json_counts

MACHINE = Path(__file__).parents[2] / "data" / "rules" / "engine_golden" / "machine.json"
TRICKY = [
    b'{"a": "[,{", "b": ["x\\"],{", "\\\\", "\\\\\\"["], "c": {"d": [1, 2, {}]}}',
    b'["\\\\\\\\", "\\"\\"", "{[,]}", [], {}, "", "\\\\"]',
    b'{"k\\u0022[": "v\\\\", "n": [[[[]]]], "e": "\\\\\\\\\\\\"}',
]


def windows(text: bytes, size: int) -> list[bytes]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("text", TRICKY)
def test_streamed_counts_are_the_whole_texts_at_every_window_size(text: bytes) -> None:
    whole = counts(JSON_STRING.sub(b"", text))
    json.loads(text)  # valid JSON: strings end where the regex says
    for size in range(1, len(text) + 1):
        assert json_counts(windows(text, size)) == whole, size


def test_streamed_counts_of_a_real_report() -> None:
    text = MACHINE.read_bytes()
    whole = counts(JSON_STRING.sub(b"", text))
    for size in (1, 7, 64, 1000, 4096, len(text)):
        assert json_counts(windows(text, size)) == whole


def test_an_amplification_body_is_refused_from_the_stream() -> None:
    body = gzip.compress(b'{"discovery": [' + b",".join([b"[]"] * 50_000) + b"]}")
    with pytest.raises(PayloadTooLargeError) as caught:
        gunzip_capped(body, 10**7, json_limits=(10**6, 10_000))
    assert caught.value.code == "too_many_json_containers"
    # Text that only looks like containers (inside strings) is counted out.
    text = json.dumps({"note": "[" * 50_000}).encode()
    assert gunzip_capped(gzip.compress(text), 10**7, json_limits=(10**6, 10_000)) == text


def test_a_bomb_is_refused_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)
    with pytest.raises(PayloadTooLargeError) as caught:
        gunzip_capped(bomb, 2**20)
    assert caught.value.code == "decompressed_too_large"


def test_a_body_past_the_kept_window_comes_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # A smaller kept window (a parameter, not a stand-in): the second pass runs.
    monkeypatch.setattr(inflate, "KEEP_BYTES", 1000)
    text = MACHINE.read_bytes()
    body = gzip.compress(text[:50_000]) + gzip.compress(text[50_000:])
    assert gunzip_capped(body, len(text), 2, (10**6, 10**6)) == text
    with pytest.raises(PayloadTooLargeError):
        gunzip_capped(body, len(text) - 1, 2)
