"""The durable spool against a real HTTP server on loopback (the collector stub) and
a real directory: what is kept, what is sent, in which order, and what is set aside."""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.spool import (
    DROPPED_FIELD,
    Outcome,
    Spool,
    SpoolError,
    SpoolLimits,
)
from agent.delivery.transport import HttpTransport
from tests.agent.collector_stub import make_pki, serve
from tests.agent.delivery.fulldisk import full_directory
from tests.agent.delivery.readonly import read_only_directory
from tests.support import free_port

FAST = SpoolLimits(min_spacing_seconds=0.0, backoff_base_seconds=10.0)


def document(seq: int) -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": str(uuid.uuid4()),
        "agent_id": "spool-test",
        "seq": seq,
        "collected_at": "2026-01-01T00:00:00Z",
        "agent_version": "0.1.0",
        "errors": [],
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reports_are_on_disk_before_sending_and_leave_after_the_2xx(tmp_path: Path) -> None:
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST)
        spooled = spool.put(document(1))
        assert spooled.path.is_file() and stub.requests == []
        with gzip.open(spooled.path) as handle:
            assert json.load(handle)["seq"] == 1
        result = spool.drain()
    assert [a.outcome for a in result.attempts] == [Outcome.DELIVERED]
    assert not spooled.path.exists() and result.pending == 0
    assert [r.document()["seq"] for r in stub.requests] == [1]


def test_outage_keeps_reports_then_sends_them_in_seq_order_with_the_same_ids(
    tmp_path: Path,
) -> None:
    clock = Clock()
    down = HttpTransport(f"http://127.0.0.1:{free_port()}", "t", timeout=2)
    spool = Spool(tmp_path, down, FAST, clock=clock, rng=random.Random(1))
    docs = [document(seq) for seq in (3, 1, 2, 10)]
    for doc in docs:
        spool.put(doc)
    failed = spool.drain()
    assert [a.outcome for a in failed.attempts] == [Outcome.RETRY]
    assert failed.attempts[0].error is not None
    assert failed.attempts[0].error.reason == "unreachable"
    assert failed.pending == 4
    # equal jitter: between half and all of the first step
    assert failed.retry_in is not None and 5.0 <= failed.retry_in <= 10.0
    assert spool.drain().attempts == ()  # still backing off: nothing is tried
    clock.now += 10.0
    with serve() as stub:
        spool.transport = HttpTransport(stub.url, "t")
        done = spool.drain()
    assert [r.document()["seq"] for r in stub.requests] == [1, 2, 3, 10]
    by_seq = {d["seq"]: d["report_id"] for d in docs}
    assert [r.document()["report_id"] for r in stub.requests] == [by_seq[s] for s in (1, 2, 3, 10)]
    assert done.pending == 0 and spool.count() == 0


def test_backoff_grows_exponentially_and_is_capped(tmp_path: Path) -> None:
    clock = Clock()
    limits = SpoolLimits(backoff_base_seconds=4.0, backoff_max_seconds=20.0)
    down = HttpTransport(f"http://127.0.0.1:{free_port()}", "t", timeout=2)
    spool = Spool(tmp_path, down, limits, clock=clock, rng=random.Random(7))
    spool.put(document(1))
    waits = []
    for _ in range(5):
        waits.append(spool.drain().retry_in)
        clock.now += 100.0
    assert [w is not None for w in waits] == [True] * 5
    steps = [4.0, 8.0, 16.0, 20.0, 20.0]
    for waited, step in zip(waits, steps, strict=True):
        assert waited is not None and step / 2 <= waited <= step


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    clock = Clock()
    with serve() as stub:
        stub.status = 429
        stub.answer = {"error": {"code": "rate_limited", "message": "slow down"}}
        stub.extra_headers = {"Retry-After": "42"}
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST, clock=clock)
        spool.put(document(1))
        result = spool.drain()
        assert result.retry_in == 42.0 and result.pending == 1
        clock.now += 41.0
        assert spool.drain().attempts == ()
        clock.now += 1.0
        stub.status, stub.answer, stub.extra_headers = 200, None, {}
        assert spool.drain().pending == 0
    assert len(stub.requests) == 2


@pytest.mark.parametrize("status", [413, 422])
def test_permanent_refusal_is_quarantined_with_the_answer_and_the_rest_goes_on(
    tmp_path: Path, status: int
) -> None:
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST)
        spool.put(document(1))
        spool.put(document(2))
        stub.status = status
        stub.answer = {"error": {"code": "invalid_facts", "message": "no", "field": "seq"}}
        first = spool.drain()
    assert [a.outcome for a in first.attempts] == [Outcome.QUARANTINED, Outcome.QUARANTINED]
    quarantined = spool.quarantined()
    assert len(quarantined) == 2 and spool.count() == 0
    answer = quarantined[0].with_name(quarantined[0].name + ".answer.txt").read_text()
    assert f"HTTP {status} invalid_facts: no (field seq)" in answer


@pytest.mark.parametrize("status", [401, 503])
def test_token_or_server_trouble_is_retried_not_quarantined(tmp_path: Path, status: int) -> None:
    with serve() as stub:
        stub.status = status
        stub.answer = {"error": {"code": "x", "message": "y"}}
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST)
        spool.put(document(1))
        result = spool.drain()
    assert [a.outcome for a in result.attempts] == [Outcome.RETRY]
    assert spool.quarantined() == [] and spool.count() == 1


def test_full_spool_drops_the_oldest_and_tells_the_next_report_once(tmp_path: Path) -> None:
    limits = SpoolLimits(max_reports=3, min_spacing_seconds=0.0)
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), limits)
        for seq in range(1, 4):
            assert spool.put(document(seq)).dropped == 0
        assert spool.put(document(4)).dropped == 1
        assert spool.put(document(5)).dropped == 1
        spool.drain()
        spool.put(document(6))
        spool.drain()
    sent = [r.document() for r in stub.requests]
    assert [d["seq"] for d in sent] == [3, 4, 5, 6]
    assert [d.get(DROPPED_FIELD) for d in sent] == [None, 1, 1, None]


def test_a_dropped_report_passes_on_the_count_it_carried(tmp_path: Path) -> None:
    limits = SpoolLimits(max_reports=1, min_spacing_seconds=0.0)
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), limits)
        spool.put(document(1))
        spool.put(document(2))  # drops 1: 2 carries 1
        spool.put(document(3))  # drops 2 and its 1: 3 carries 2
        spool.drain()
    (sent,) = [r.document() for r in stub.requests]
    assert (sent["seq"], sent[DROPPED_FIELD]) == (3, 2)


def test_byte_bound_drops_too(tmp_path: Path) -> None:
    limits = SpoolLimits(max_bytes=1, min_spacing_seconds=0.0)
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), limits)
        spool.put(document(1))
        assert spool.put(document(2)).dropped == 1
    assert spool.count() == 1


def test_corrupt_and_torn_files_are_quarantined_counted_and_never_block(tmp_path: Path) -> None:
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST)
        good = spool.put(document(2)).path
        (good.parent / f"{1:020d}-torn.json.gz").write_bytes(gzip.compress(b"{}")[:9])
        (good.parent / f"{0:020d}-junk.json.gz").write_bytes(b"not gzip at all")
        (good.parent / ".tmp-killed-mid-write").write_bytes(b"half")
        first = spool.drain()
        spool.put(document(3))
        spool.drain()
    assert [a.outcome for a in first.attempts] == [
        Outcome.QUARANTINED,
        Outcome.QUARANTINED,
        Outcome.DELIVERED,
    ]
    assert "unreadable" in first.attempts[0].reason
    assert not (good.parent / ".tmp-killed-mid-write").exists()
    assert [r.document()["seq"] for r in stub.requests] == [2, 3]
    assert [r.document().get(DROPPED_FIELD) for r in stub.requests] == [None, 2]
    assert len(spool.quarantined()) == 2


def test_recover_removes_leftovers_without_a_cycle_and_keeps_reports(tmp_path: Path) -> None:
    # A daemon killed mid-write and then restarted and stopped before its first cycle
    # must not leave the half-written file for ever (seen in the SIGKILL e2e test).
    spool = Spool(tmp_path, HttpTransport("https://127.0.0.1:9", "t"), FAST)
    kept = spool.put(document(1)).path
    (kept.parent / ".tmp-killed-mid-write").write_bytes(b"half")
    assert spool.recover() == 1
    assert kept.exists()
    assert list(kept.parent.glob(".tmp-*")) == []


def test_read_only_spool_is_a_clear_error(tmp_path: Path) -> None:
    with read_only_directory(tmp_path / "spool"):
        spool = Spool(tmp_path, HttpTransport("http://127.0.0.1:1", "t"), FAST)
        with pytest.raises(
            SpoolError, match=r"cannot .* spool .*(Read-only file system|Permission denied)"
        ):
            spool.put(document(1))


def test_a_spool_that_turns_read_only_backs_off_instead_of_resending(tmp_path: Path) -> None:
    clock = Clock()
    with serve() as stub:
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST, clock=clock)
        spooled = spool.put(document(1))
        with read_only_directory(tmp_path / "spool"):
            with pytest.raises(SpoolError, match="Read-only file system"):
                spool.drain()
            assert spool.retry_in() > 0
            assert spool.drain().attempts == ()
        assert spooled.path.exists()
    assert len(stub.requests) <= 1  # never re-sent while the spool is unusable


def test_a_collector_with_an_untrusted_certificate_is_refused_and_the_report_kept(
    tmp_path: Path,
) -> None:
    (tmp_path / "served").mkdir()
    (tmp_path / "other").mkdir()
    served, other = make_pki(tmp_path / "served"), make_pki(tmp_path / "other")
    with serve(served.server_context) as stub:
        wrong_ca = HttpTransport(stub.url, "t", ca_file=other.ca_file)
        spool = Spool(tmp_path / "state", wrong_ca, FAST)
        spool.put(document(1))
        result = spool.drain()
    (attempt,) = result.attempts
    assert attempt.outcome is Outcome.RETRY
    assert attempt.error is not None and attempt.error.reason == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error.detail
    assert spool.count() == 1 and spool.quarantined() == []
    assert stub.requests == []  # nothing, token included, went to the unverified server


@pytest.mark.parametrize(
    ("status", "ahead", "low", "high"),
    [
        (503, 120.0, 118.0, 120.0),  # an HTTP-date has whole seconds
        (429, 365 * 86400.0, 86400.0, 86400.0),  # bounded like the seconds form: a day
        (503, -3600.0, None, None),  # already past: no wait asked (the next cycle retries)
    ],
)
def test_retry_after_as_an_http_date_is_honoured(
    tmp_path: Path, status: int, ahead: float, low: float | None, high: float | None
) -> None:
    """RFC 9110 allows Retry-After as an IMF-fixdate; a proxy in front of the
    collector may send that form. A real loopback server answers with it."""
    clock = Clock()
    when = datetime.now(UTC) + timedelta(seconds=ahead)
    with serve() as stub:
        stub.status = status
        stub.answer = {"error": {"code": "overloaded", "message": "later"}}
        stub.extra_headers = {"Retry-After": format_datetime(when, usegmt=True)}
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST, clock=clock)
        spool.put(document(1))
        result = spool.drain()
    assert result.pending == 1 and len(stub.requests) == 1
    assert result.attempts[0].error is not None
    if low is None:
        assert result.retry_in is None
    else:
        assert result.retry_in is not None and low <= result.retry_in <= (high or low)


@pytest.mark.parametrize("value", ["soon", "Wed, 99 Oct 2015 07:28:00 GMT", "1.5", "x" * 100])
def test_an_unreadable_retry_after_leaves_the_spools_backoff(tmp_path: Path, value: str) -> None:
    clock = Clock()
    with serve() as stub:
        stub.status = 503
        stub.answer = {"error": {"code": "overloaded", "message": "later"}}
        stub.extra_headers = {"Retry-After": value}
        spool = Spool(tmp_path, HttpTransport(stub.url, "t"), FAST, clock=clock)
        spool.put(document(1))
        result = spool.drain()
    # FAST's first backoff step is 10 s with equal jitter: between 5 and 10 s.
    assert result.retry_in is not None and 5.0 <= result.retry_in <= 10.0


def test_a_full_disk_is_a_clear_error_and_the_spooled_reports_still_go(tmp_path: Path) -> None:
    """The disk under the spool fills up: the new report cannot be stored (a clear
    SpoolError naming the directory and ENOSPC), nothing half-written is left, and
    the report spooled before is still delivered."""
    with serve() as stub:
        earlier = Spool(tmp_path / "before", HttpTransport(stub.url, "t"), FAST)
        first = earlier.put(document(1)).path
        spool_dir = tmp_path / "state" / "spool"
        with full_directory(spool_dir, keep=(first,)):
            spool = Spool(tmp_path / "state", HttpTransport(stub.url, "t"), FAST)
            with pytest.raises(SpoolError, match=r"cannot write to the spool .*No space left"):
                spool.put(document(2))
            assert [p.name for p in spool_dir.glob(".tmp-*")] == []
            assert spool.count() == 1
            result = spool.drain()
            assert [a.outcome for a in result.attempts] == [Outcome.DELIVERED]
            assert spool.count() == 0
    assert [r.document()["seq"] for r in stub.requests] == [1]
