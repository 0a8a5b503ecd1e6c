"""Body decoding and validation: limits, gzip, UTF-8, JSON depth, schema, timestamps."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from server.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedEncodingError,
)
from server.ingest.inflate import gunzip_capped
from server.ingest.payload import Limits, decode_document, json_depth, parse_json
from tests.server.helpers import body_of, deep_json, gzip_bomb, iso, make_facts

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=1024 * 1024,
    max_decompressed_bytes=4 * 1024 * 1024,
    max_json_depth=64,
    future_skew=timedelta(minutes=5),
)


def decode(body: bytes, encoding: str | None = None) -> object:
    return decode_document(body, encoding, LIMITS, NOW)


def test_decodes_a_valid_document() -> None:
    facts = make_facts(collected_at=NOW - timedelta(hours=1), agent_id="a.b-c:1", seq=42)
    document = decode_document(body_of(facts), None, LIMITS, NOW)
    assert document.report_id == facts["report_id"]
    assert (document.agent_id, document.seq) == ("a.b-c:1", 42)
    assert document.collected_at == NOW - timedelta(hours=1)
    assert document.collected_at.tzinfo is UTC
    assert document.hostname == "web01"
    assert document.os_pretty_name == "Debian 12"
    assert json.loads(document.text) == facts


def test_hostname_falls_back_to_agent_id_without_host_facts() -> None:
    facts = make_facts(collected_at=NOW)
    del facts["host"]
    document = decode_document(body_of(facts), None, LIMITS, NOW)
    assert document.hostname == "agent-1"
    assert document.os_pretty_name is None


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", " x-gzip "])
def test_gzip_is_decoded(encoding: str) -> None:
    facts = make_facts(collected_at=NOW)
    document = decode_document(body_of(facts, compress=True), encoding, LIMITS, NOW)
    assert document.report_id == facts["report_id"]


@pytest.mark.parametrize("encoding", [None, "", "identity"])
def test_identity_encodings(encoding: str | None) -> None:
    facts = make_facts(collected_at=NOW)
    assert decode_document(body_of(facts), encoding, LIMITS, NOW).seq == 1


def test_body_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        decode(b" " * (LIMITS.max_body_bytes + 1))
    assert (caught.value.status, caught.value.code) == (413, "body_too_large")


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip", "compress"])
def test_unsupported_encoding_is_415(encoding: str) -> None:
    with pytest.raises(UnsupportedEncodingError) as caught:
        decode(b"{}", encoding)
    assert caught.value.status == 415


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)
    with pytest.raises(PayloadTooLargeError) as caught:
        gunzip_capped(bomb, 1024 * 1024)
    assert caught.value.code == "decompressed_too_large"


def test_gunzip_at_exactly_the_cap_is_accepted() -> None:
    data = b"x" * 1000
    assert gunzip_capped(gzip.compress(data), 1000) == data
    with pytest.raises(PayloadTooLargeError):
        gunzip_capped(gzip.compress(data), 999)


def test_gunzip_reads_every_member() -> None:
    assert gunzip_capped(gzip.compress(b"ab") + gzip.compress(b"cd"), 100) == b"abcd"


def test_gunzip_cap_counts_every_member() -> None:
    members = gzip.compress(b"a" * 60) + gzip.compress(b"b" * 60)
    with pytest.raises(PayloadTooLargeError):
        gunzip_capped(members, 100)


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b'{"a": 1}')[:-6], b""],
    ids=["garbage", "truncated", "empty"],
)
def test_invalid_gzip_is_400(body: bytes) -> None:
    with pytest.raises(BadRequestError) as caught:
        gunzip_capped(body, 1000)
    assert caught.value.code == "invalid_gzip"


def test_invalid_utf8_is_400() -> None:
    with pytest.raises(BadRequestError) as caught:
        decode(b'{"x": "\xc3\x28"}')
    assert caught.value.code == "invalid_utf8"


@pytest.mark.parametrize("text", ["{", "", "{'a': 1}", '{"a": NaN}', '{"a": Infinity}', "\ufeff{}"])
def test_invalid_json_is_400(text: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json(text, 64)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("text", ["[]", "1", '"text"', "null"])
def test_non_object_is_400(text: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json(text, 64)
    assert caught.value.code == "not_an_object"


def test_depth_limit_is_inclusive() -> None:
    assert json_depth(json.loads(deep_json(64)), 100) == 64
    assert parse_json(deep_json(64).decode(), 64)  # exactly at the limit
    with pytest.raises(BadRequestError) as caught:
        parse_json(deep_json(65).decode(), 64)
    assert caught.value.code == "json_too_deep"


def test_arrays_count_towards_depth() -> None:
    text = '{"a":' + "[" * 70 + "]" * 70 + "}"
    with pytest.raises(BadRequestError):
        parse_json(text, 64)


def test_nesting_beyond_the_recursion_limit_is_400_not_recursion_error() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json("[" * 1_000_000 + "]" * 1_000_000, 64)
    assert caught.value.code == "json_too_deep"


def test_lone_surrogate_is_400_but_pairs_are_fine() -> None:
    assert parse_json('{"a": "\\ud83d\\ude00"}', 64) == {"a": "\U0001f600"}
    with pytest.raises(BadRequestError) as caught:
        parse_json('{"a": "\\ud800"}', 64)
    assert caught.value.code == "invalid_unicode"


def _unprocessable(facts: dict[str, object]) -> UnprocessableError:
    with pytest.raises(UnprocessableError) as caught:
        decode(body_of(facts))
    assert caught.value.status == 422
    return caught.value


def test_missing_schema_names_schema() -> None:
    facts = make_facts(collected_at=NOW)
    del facts["schema"]
    assert _unprocessable(facts).field == "schema"


def test_other_schema_version_names_schema() -> None:
    error = _unprocessable({**make_facts(collected_at=NOW), "schema": "canhgac.facts/v2"})
    assert (error.code, error.field) == ("unsupported_schema", "schema")
    assert "canhgac.facts/v2" in error.message


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda f: f.pop("seq"), "seq"),
        (lambda f: f["host"].pop("hostname"), "host.hostname"),
        (lambda f: f["host"]["os"].pop("name"), "host.os.name"),
        (lambda f: f.update(seq=-1), "seq"),
        (lambda f: f.update(seq="1"), "seq"),
        (lambda f: f.update(report_id="not-a-uuid"), "report_id"),
        (lambda f: f.update(collected_at="2026-11-27 08:00:00"), "collected_at"),
        (lambda f: f.update(listening=[{"protocol": "tcp"}]), "listening.0.family"),
        (lambda f: f.update(errors="none"), "errors"),
    ],
    ids=[
        "missing-seq",
        "missing-hostname",
        "missing-os-name",
        "negative-seq",
        "string-seq",
        "bad-report-id",
        "bad-timestamp",
        "listener-missing-family",
        "errors-not-list",
    ],
)
def test_schema_violations_name_the_field(mutate: object, field: str) -> None:
    facts = make_facts(collected_at=NOW)
    mutate(facts)  # type: ignore[operator]
    error = _unprocessable(facts)
    assert error.code == "schema_violation"
    assert error.field == field
    assert field in error.message
    assert "data." not in error.message


def test_impossible_date_is_422() -> None:
    facts = make_facts(collected_at=NOW)
    facts["collected_at"] = "2026-02-30T00:00:00Z"
    assert _unprocessable(facts).field == "collected_at"


def test_collected_at_within_the_skew_is_accepted() -> None:
    facts = make_facts(collected_at=NOW + timedelta(minutes=4))
    assert decode(body_of(facts))


def test_collected_at_beyond_the_skew_is_422() -> None:
    error = _unprocessable(make_facts(collected_at=NOW + timedelta(minutes=6)))
    assert (error.code, error.field) == ("collected_at_in_future", "collected_at")


def test_nine_fractional_digits_are_accepted() -> None:
    facts = make_facts()
    facts["collected_at"] = "2026-11-27T07:59:59.123456789Z"
    document = decode_document(body_of(facts), None, LIMITS, NOW)
    assert document.collected_at == datetime(2026, 11, 27, 7, 59, 59, 123456, tzinfo=UTC)
    assert iso(document.collected_at).startswith("2026-11-27T07:59:59.123456")


def test_duplicate_keys_are_refused_with_their_path() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json('{"a": {"b": [{"c": 1, "c": 2}]}}', 64)
    assert (caught.value.code, caught.value.field) == ("duplicate_key", "a.b[0].c")
    assert "repeats key 'c'" in caught.value.message


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.7976931348623159e308"])
def test_non_finite_numbers_are_refused(number: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json('{"a": ' + number + "}", 64)
    assert caught.value.code == "number_out_of_range"


def test_finite_floats_are_kept() -> None:
    assert parse_json('{"a": 1.5e300}', 64) == {"a": 1.5e300}


def test_list_length_limit() -> None:
    assert parse_json('{"a": [1, 2]}', 64, max_items=2) == {"a": [1, 2]}
    with pytest.raises(PayloadTooLargeError) as caught:
        parse_json('{"a": {"b": [1, 2, 3]}}', 64, max_items=2)
    assert (caught.value.code, caught.value.field) == ("list_too_long", "a.b")


def test_seq_epoch_is_read() -> None:
    document = decode_document(
        json.dumps(make_facts(seq_epoch="abc-1", collected_at=NOW)).encode(), None, LIMITS, NOW
    )
    assert document.seq_epoch == "abc-1"


def test_nul_character_is_400_but_an_escaped_backslash_is_fine() -> None:
    # PostgreSQL text cannot hold NUL: refuse it here instead of failing at commit.
    with pytest.raises(BadRequestError) as caught:
        parse_json('{"host": {"hostname": "web\\u0000x"}}', 64)
    assert caught.value.code == "invalid_unicode"
    with pytest.raises(BadRequestError):
        parse_json('{"we\\u0000ird": 1}', 64)
    assert parse_json('{"a": "C:\\\\u0000"}', 64) == {"a": "C:\\u0000"}
