"""The periodic lease: of replicas asking at once exactly one gets the turn, nobody
again before the period has passed, and a dead holder's turn expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.evaluation.lease import RETENTION_ROW, PeriodicLease
from server.evaluation.reeval import last_applied_fingerprint
from server.storage.database import Database
from server.storage.models import PolicyState

EVERY = timedelta(hours=1)
HOLD = timedelta(minutes=10)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_one_turn_per_period_across_replicas(database: Database) -> None:
    clock = Clock()
    a, b = (PeriodicLease(database, RETENTION_ROW, clock, owner) for owner in ("a", "b"))
    assert a.claim(EVERY, HOLD)
    assert not b.claim(EVERY, HOLD)  # held by a
    a.release()
    assert not b.claim(EVERY, HOLD)  # free, but a ran it less than a period ago
    clock.now += EVERY - timedelta(seconds=1)
    assert not b.claim(EVERY, HOLD)
    clock.now += timedelta(seconds=1)
    assert b.claim(EVERY, HOLD)
    assert not a.claim(EVERY, HOLD)
    with database.session() as session:
        row = session.get(PolicyState, RETENTION_ROW)
        assert row is not None
        assert (row.lease_owner, row.updated_at) == ("b", clock.now)
    # The policy's row (re-evaluation's lease) is another row, untouched.
    assert last_applied_fingerprint(database) == (None, None)


def test_a_dead_holders_turn_expires(database: Database) -> None:
    clock = Clock()
    every = timedelta(minutes=5)  # due again before the holder's lease ends
    a, b = (PeriodicLease(database, RETENTION_ROW, clock, owner) for owner in ("a", "b"))
    assert a.claim(every, HOLD)  # and a dies: no release
    clock.now += every + timedelta(minutes=1)
    assert not b.claim(every, HOLD)  # due, but a may still be running it
    clock.now += HOLD - every  # a's lease has ended
    assert b.claim(every, HOLD)
