"""Property-based tests of report decoding (hypothesis): random bytes and random JSON.

- whatever the body, decoding answers a FactsDocument or an IngestError (a precise
  4xx), never another exception, and the same body always gets the same answer;
- the pre-scan that refuses bodies before json.loads never under-counts: with the
  exact number of containers and values of a document as limits it passes, one
  below them it refuses, whatever the strings hold (quotes, escapes, brackets);
- gzip in any number of members up to the cap inflates to the concatenation.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import IngestError, PayloadTooLargeError
from server.ingest.inflate import gunzip_capped
from server.ingest.payload import Limits, decode_document, prescan_json
from tests.server.helpers import body_of, make_facts

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=256 * 1024,
    max_decompressed_bytes=1024 * 1024,
    max_json_depth=16,
    future_skew=timedelta(minutes=5),
    max_json_values=5_000,
    max_json_containers=1_000,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strings rich in what a byte scanner could mistake for structure.
TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('ab,[]{}":\\ \n\u00e9\u202e\x1b')), max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(TRICKY_TEXT, children, max_size=5)
    ),
    max_leaves=40,
)


def _decode(body: bytes, encoding: str | None) -> tuple[str, Any]:
    try:
        document = decode_document(body, encoding, LIMITS, NOW)
    except IngestError as e:
        return "refused", (e.status, e.code, e.field)
    return "accepted", document.report_id


@SETTINGS
@given(body=st.binary(max_size=2048), gzipped=st.booleans())
def test_random_bytes_get_an_answer_or_a_4xx(body: bytes, gzipped: bool) -> None:
    if gzipped:
        body = gzip.compress(body)
    first = _decode(body, "gzip" if gzipped else None)
    assert first[0] == "refused"
    assert 400 <= first[1][0] < 500
    assert _decode(body, "gzip" if gzipped else None) == first


@SETTINGS
@given(extra=JSON_VALUES, key=st.sampled_from(["discovery", "zz_unknown", "errors", "host"]))
def test_random_json_in_a_report_is_decoded_deterministically(extra: Any, key: str) -> None:
    facts = make_facts(collected_at=NOW - timedelta(minutes=1))
    facts[key] = extra
    body = body_of(facts, compress=True)
    first = _decode(body, "gzip")
    if first[0] == "refused":
        assert 400 <= first[1][0] < 500
    assert _decode(body, "gzip") == first


def _census(value: Any) -> tuple[int, int]:
    """(containers, values) of a parsed JSON value, counted by walking it."""
    containers, values = 0, 0
    stack = [value]
    while stack:
        node = stack.pop()
        values += 1
        if isinstance(node, dict):
            containers += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            containers += 1
            stack.extend(node)
    return containers, values


@SETTINGS
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_the_prescan_never_undercounts(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    containers, values = _census(value)
    # Exact limits: passes (values counted are at most values + containers).
    prescan_json(text, max_values=values + containers, max_containers=containers)
    if containers:
        with pytest.raises(PayloadTooLargeError):
            prescan_json(text, max_values=10**9, max_containers=containers - 1)
    if values > 1:
        with pytest.raises(PayloadTooLargeError):
            prescan_json(text, max_values=values - 1, max_containers=10**9)


@SETTINGS
@given(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_gzip_members_inflate_to_their_concatenation(parts: list[bytes]) -> None:
    body = b"".join(gzip.compress(p) for p in parts)
    assert gunzip_capped(body, 4096, max_members=6) == b"".join(parts)
    if len(parts) > 1:
        with pytest.raises(PayloadTooLargeError):
            gunzip_capped(body, 4096, max_members=len(parts) - 1)
