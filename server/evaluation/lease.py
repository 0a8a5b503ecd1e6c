"""Periodic background work done once across replicas and workers, under a lease.

`serve --workers N` and several collectors on one database are all replicas: each
runs the background loops, but work that changes the database for everyone (the
retention) must run once per period, not once per replica. The lease lives in
`policy_state`, beside re-evaluation's (row 1, `reeval`): row `RETENTION_ROW`'s
`lease_owner` / `lease_expires_at` say who runs it now, its `updated_at` when it
last started. `claim` takes the turn in one conditional UPDATE, so of replicas that
ask at the same moment exactly one gets it, and none again until `every` has passed
since that start. A replica that dies while running leaves the lease to expire; the
work is idempotent, so the next one simply runs it again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update

from server.clock import Clock, utc_now
from server.storage.database import Database, add_unless_present
from server.storage.models import PolicyState

RETENTION_ROW = 2  # row 1 is the policy's (server.evaluation.reeval)


class PeriodicLease:
    """One row of `policy_state` as the turn of one periodic piece of work."""

    def __init__(
        self, database: Database, row: int, clock: Clock = utc_now, owner: str | None = None
    ) -> None:
        self._database = database
        self._row = row
        self._clock = clock
        self.owner = owner or uuid.uuid4().hex

    def claim(self, every: timedelta, hold: timedelta) -> bool:
        """Take the turn when nobody holds it and the last one started at least
        `every` ago; held for at most `hold` (then another replica may take it)."""
        now = self._clock()
        with self._database.write() as session:
            if session.get(PolicyState, self._row) is None:
                add_unless_present(session, PolicyState(id=self._row))
            statement = (
                update(PolicyState)
                .where(
                    PolicyState.id == self._row,
                    or_(
                        PolicyState.lease_owner.is_(None),
                        PolicyState.lease_owner == self.owner,
                        PolicyState.lease_expires_at < now,
                    ),
                    or_(PolicyState.updated_at.is_(None), PolicyState.updated_at <= now - every),
                )
                .values(lease_owner=self.owner, lease_expires_at=now + hold, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            result = cast(CursorResult[Any], session.execute(statement))
            return result.rowcount == 1

    def release(self) -> None:
        with self._database.write() as session:
            session.execute(
                update(PolicyState)
                .where(PolicyState.id == self._row, PolicyState.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
