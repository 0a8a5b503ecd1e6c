"""Hardening of report decoding (issue 14): limits met before the work they bound.

Each test here failed before the change it covers: the body of millions of tiny
values was parsed in full before any limit (now refused by a pre-scan of the bytes),
thousands of gzip members were inflated one by one in quadratic time (now counted
and capped), a float `seq` and a year-1 `collected_at` were accepted, and unknown
top-level keys were stored with every report. Memory and time are measured in
bench/collector_abuse.py, not asserted here.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from server.errors import BadRequestError, PayloadTooLargeError, UnprocessableError
from server.ingest.inflate import gunzip_capped
from server.ingest.payload import (
    EARLIEST_COLLECTED_AT,
    Limits,
    decode_document,
    prescan_json,
)
from tests.server.helpers import body_of, make_facts

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=1024 * 1024,
    max_decompressed_bytes=8 * 1024 * 1024,
    max_json_depth=64,
    future_skew=timedelta(minutes=5),
    max_json_values=100_000,
    max_json_containers=20_000,
    max_gzip_members=4,
)


def _error(body: bytes, encoding: str | None = None) -> Exception:
    with pytest.raises((BadRequestError, PayloadTooLargeError, UnprocessableError)) as caught:
        decode_document(body, encoding, LIMITS, NOW)
    return caught.value


def test_millions_of_empty_lists_are_refused_before_parsing() -> None:
    # 3 MB of `[],` expands into a million list objects: refused by counting bytes,
    # and with a code no parse-then-check path produces.
    inner = b",".join([b"[]"] * 1_000_000)
    body = gzip.compress(b'{"discovery": [' + inner + b"]}")
    assert len(body) < 64 * 1024  # a small request
    error = _error(body, "gzip")
    assert isinstance(error, PayloadTooLargeError)
    assert error.code == "too_many_json_containers"


def test_millions_of_scalars_are_refused_before_parsing() -> None:
    inner = b",".join([b"0"] * 150_000)
    error = _error(b'{"discovery": [' + inner + b"]}")
    assert isinstance(error, PayloadTooLargeError)
    assert error.code == "too_many_json_values"


def test_commas_and_brackets_inside_strings_are_not_counted() -> None:
    # 200,000 commas and brackets, all inside strings: text, not values.
    text = json.dumps({"discovery": ["[{," * 50_000, 'a\\"[,{' * 10_000]}).encode()
    prescan_json(text, max_values=10, max_containers=10)  # no exception
    with pytest.raises(PayloadTooLargeError):
        prescan_json(b"[" + b",".join([b"{}"] * 11) + b"]", max_values=1000, max_containers=10)


def test_a_valid_report_passes_the_prescan() -> None:
    facts = make_facts(collected_at=NOW)
    document = decode_document(body_of(facts, compress=True), "gzip", LIMITS, NOW)
    assert document.report_id == facts["report_id"]


def test_many_empty_gzip_members_are_refused_by_count() -> None:
    document = gzip.compress(body_of(make_facts(collected_at=NOW)))
    empty = gzip.compress(b"")
    body = document + empty * 50_000  # about 1 MB: under the size cap
    error = _error(body, "gzip")
    assert isinstance(error, PayloadTooLargeError)
    assert error.code == "too_many_gzip_members"


def test_members_up_to_the_cap_are_inflated_in_order() -> None:
    parts = [b"alpha ", b"beta ", b"", b"gamma"]
    body = b"".join(gzip.compress(p) for p in parts)
    assert gunzip_capped(body, 1024, max_members=4) == b"alpha beta gamma"
    with pytest.raises(PayloadTooLargeError):
        gunzip_capped(body, 1024, max_members=3)


def test_a_member_larger_than_one_input_slice_is_whole() -> None:
    # Incompressible data: the member spans many of the 64 KiB input slices.
    data = bytes(range(256)) * 4096 + b"end"
    assert gunzip_capped(gzip.compress(data) + gzip.compress(b"!"), 2 * len(data), 2) == (
        data + b"!"
    )


def test_truncated_and_empty_gzip_are_400() -> None:
    whole = gzip.compress(b'{"a": 1}')
    for body in (b"", whole[:-4], whole + b"\x1f"):
        with pytest.raises(BadRequestError):
            gunzip_capped(body, 1024)


def test_float_seq_is_422() -> None:
    facts = make_facts(collected_at=NOW, seq=5)
    text = body_of(facts).replace(b'"seq": 5', b'"seq": 5.0').replace(b'"seq":5', b'"seq":5.0')
    assert b"5.0" in text
    error = _error(text)
    assert isinstance(error, UnprocessableError)
    assert (error.code, error.field) == ("schema_violation", "seq")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
def test_collected_at_before_the_floor_is_422(when: str) -> None:
    facts = make_facts(collected_at=NOW)
    facts["collected_at"] = when
    error = _error(body_of(facts))
    assert isinstance(error, UnprocessableError)
    assert (error.code, error.field) == ("collected_at_too_old", "collected_at")


def test_collected_at_at_the_floor_is_accepted() -> None:
    facts = make_facts(collected_at=EARLIEST_COLLECTED_AT)
    document = decode_document(body_of(facts), None, LIMITS, NOW)
    assert document.collected_at == EARLIEST_COLLECTED_AT


def test_unknown_top_level_keys_are_dropped_and_named() -> None:
    facts = make_facts(collected_at=NOW)
    facts["zz_padding"] = "x" * 100_000
    facts["another"] = {"a": 1}
    document = decode_document(body_of(facts), None, LIMITS, NOW)
    assert document.dropped_keys == ("another", "zz_padding")
    assert "zz_padding" not in document.data and "another" not in document.data
    assert document.data["host"] == facts["host"]  # the known keys are all kept
