"""The unchanged path: a domain sent exactly as the host's current one is neither
validated nor serialised again; derived ages are stripped without a deep copy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rules.derived import strip_derived
from server.errors import BadRequestError, PayloadTooLargeError, UnprocessableError
from server.ingest.payload import parse_json_spans
from server.ingest.schema_check import check_schema, sent_digest
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.models import FactsBlob, Host
from tests.server.helpers import body_of, make_facts, telnet

PACKAGES = {
    "manager": "dpkg",
    "count": 2,
    "items": [
        {"name": "openssl", "version": "3.0.15-1~deb12u1", "architecture": "amd64"},
        {"name": "bash", "version": "5.2.15-2+b7", "architecture": "amd64"},
    ],
}


def test_spans_are_the_values_text() -> None:
    text = ' { "a" : [1, 2] , "b":{"c": "x,}"}, "c": 3 }  '
    data, spans = parse_json_spans(text, 64)
    assert data == {"a": [1, 2], "b": {"c": "x,}"}, "c": 3}
    assert {k: text[s:e] for k, (s, e) in spans.items()} == {
        "a": "[1, 2]",
        "b": '{"c": "x,}"}',
        "c": "3",
    }


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"a": 1 "b": 2}', "invalid_json"),
        ('{"a": 1}x', "invalid_json"),
        ('{"a": 1,}', "invalid_json"),
        ('{"a" 1}', "invalid_json"),
        ("{a: 1}", "invalid_json"),
        ('{"a": 1', "invalid_json"),
        ('{"a": 1, "a": 2}', "duplicate_key"),
        ("[1]", "not_an_object"),
    ],
)
def test_top_level_refusals(text: str, code: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json_spans(text, 64)
    assert caught.value.code == code


def test_empty_object_parses() -> None:
    assert parse_json_spans(" {} ", 64) == ({}, {})


def test_a_trusted_domain_is_skipped_and_the_others_are_checked() -> None:
    data = make_facts(packages={"manager": "dpkg", "count": "two", "items": []})
    with pytest.raises(UnprocessableError) as whole:
        check_schema(data)
    with pytest.raises(UnprocessableError) as per_domain:
        check_schema(data, lambda _envelope: frozenset({"listening"}))
    # The same field and words as the whole-document validation.
    assert (per_domain.value.field, per_domain.value.message) == (
        whole.value.field,
        whole.value.message,
    )
    assert whole.value.field == "packages.count"
    check_schema(data, lambda _envelope: frozenset({"packages"}))  # skipped: no error


def test_the_envelope_is_always_checked() -> None:
    data = make_facts(seq=-1)
    with pytest.raises(UnprocessableError) as caught:
        check_schema(data, lambda _envelope: frozenset(data))
    assert caught.value.field == "seq"


def ingest(service: IngestService, token: str, facts: dict[str, Any]) -> dict[str, Any]:
    credential = service.authenticate(token)
    return service.ingest(credential, body_of(facts), None).to_body()


def test_same_bytes_reuse_the_stored_domain(
    service: IngestService, database: Database, token: str
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    first = make_facts(seq=1, collected_at=start, packages=PACKAGES, listening=[telnet()])
    assert ingest(service, token, first)["status"] == "accepted"
    with database.session() as session:
        host = session.scalars(select(Host)).one()
        blobs = dict(host.domain_blobs or {})
    packages_as_sent = json.dumps(PACKAGES)
    assert blobs["packages"][2] == sent_digest(packages_as_sent)
    second = make_facts(
        seq=2, collected_at=start + timedelta(minutes=1), packages=PACKAGES, listening=[]
    )
    answer = ingest(service, token, second)
    assert answer["status"] == "accepted"
    assert answer["failing"] == 0  # evaluated: the listener went away
    with database.session() as session:
        host = session.scalars(select(Host)).one()
        after = dict(host.domain_blobs or {})
        count = session.scalar(
            select(func.count()).select_from(FactsBlob).where(FactsBlob.domain == "packages")
        )
    assert after["packages"] == blobs["packages"]
    assert after["listening"][0] != blobs["listening"][0]
    assert count == 1


def test_changed_bytes_of_a_domain_are_checked_again(service: IngestService, token: str) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    ingest(service, token, make_facts(seq=1, collected_at=start, packages=PACKAGES))
    broken = {**PACKAGES, "count": "two"}
    with pytest.raises(UnprocessableError) as caught:
        ingest(
            service,
            token,
            make_facts(seq=2, collected_at=start + timedelta(minutes=1), packages=broken),
        )
    assert caught.value.field == "packages.count"


def test_strip_derived_copies_only_what_it_changes() -> None:
    original = {
        "host": {"hostname": "web01", "boot_time": "2026-11-20T12:00:00Z", "uptime_seconds": 9},
        "certificates": [{"location": "a", "not_after": "2026-12-07T12:00:00Z", "days_left": 10}],
        "packages": PACKAGES,
    }
    before = json.dumps(original, sort_keys=True)
    stripped = strip_derived(original)
    assert json.dumps(original, sort_keys=True) == before  # the input is untouched
    assert "uptime_seconds" not in stripped["host"]
    assert "days_left" not in stripped["certificates"][0]
    assert stripped["packages"] is original["packages"]  # shared, not copied


def test_ages_alone_leave_the_host_row_as_it_was(
    service: IngestService, database: Database, token: str
) -> None:
    """host.uptime_seconds changes at every report: the stored domain does not, and
    neither does domain_blobs (no row rewritten for nothing)."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    blobs = []
    for seq in (1, 2, 3):
        facts = make_facts(seq=seq, collected_at=start + timedelta(minutes=seq))
        facts["host"] |= {"boot_time": "2026-11-20T12:00:00Z", "uptime_seconds": 1000 + seq}
        assert ingest(service, token, facts)["status"] == "accepted"
        with database.session() as session:
            blobs.append(dict(session.scalars(select(Host)).one().domain_blobs or {}))
    assert blobs[0] == blobs[1] == blobs[2]


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_trusted_value_is_not_walked_for_its_shape() -> None:
    """Depth and list lengths of a value sent with bytes checked before are not walked
    again; every other value still is."""
    text = json.dumps({"packages": _nested(10), "listening": [1, 2, 3]})
    with pytest.raises(BadRequestError) as caught:
        parse_json_spans(text, 5)
    assert caught.value.code == "json_too_deep"
    data, _ = parse_json_spans(text, 5, 100, lambda _data, _spans: {"packages"})
    assert data["listening"] == [1, 2, 3]
    with pytest.raises(PayloadTooLargeError) as long:
        parse_json_spans(text, 64, 2, lambda _data, _spans: {"packages"})
    assert (long.value.code, long.value.field) == ("list_too_long", "listening")


def test_a_changed_domain_is_walked_beside_trusted_ones(service: IngestService, token: str) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    ingest(service, token, make_facts(seq=1, collected_at=start, packages=PACKAGES))
    deep = make_facts(
        seq=2,
        collected_at=start + timedelta(minutes=1),
        packages=PACKAGES,  # the same bytes: trusted
        listening=[{**telnet(), "extra": _nested(service.limits.max_json_depth + 5)}],
    )
    with pytest.raises(BadRequestError) as caught:
        ingest(service, token, deep)
    assert caught.value.code == "json_too_deep"


def test_a_repeated_key_in_a_changed_domain_is_refused_beside_trusted_ones(
    service: IngestService, token: str
) -> None:
    """Trusted domains are parsed without the duplicate-key hook; the others are
    parsed again with it."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    ingest(service, token, make_facts(seq=1, collected_at=start, packages=PACKAGES))
    facts = make_facts(
        seq=2, collected_at=start + timedelta(minutes=1), packages=PACKAGES, listening=[telnet()]
    )
    text = json.dumps(facts).replace('"port": 23', '"port": 23, "port": 2323')
    credential = service.authenticate(token)
    with pytest.raises(BadRequestError) as caught:
        service.ingest(credential, text.encode(), None)
    assert (caught.value.code, caught.value.field) == ("duplicate_key", "listening[0].port")
    # The same value, whichever parse made each part of it.
    clean = json.dumps(facts)
    assert parse_json_spans(clean, 64, 100, lambda _d, _s: {"packages"})[0] == json.loads(clean)
