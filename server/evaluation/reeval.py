"""Re-evaluating every host's latest facts when the policy changes.

Rule packs, waivers, scopes, frameworks and weights all feed the policy fingerprint.
Each host stores the fingerprint its current results were computed with; a replica
whose loaded policy differs re-evaluates those hosts from their stored latest facts,
without waiting for new reports.

Several replicas: a lease in `policy_state` (one row) makes one replica do the work
while the others skip it; the lease expires, so a replica that dies mid-way is
replaced by the next one that tries. The work is per host and idempotent (a host
already at the fingerprint is skipped), so an interrupted run resumes where it
stopped. Each host is re-evaluated in its own short transaction, under the same
row lock as ingest, and a newer report that arrived meanwhile is never overwritten.

The same run re-evaluates the discovering hosts of agencies where a host showed an
address their managed set lacked (`lan.ManagedLan`: a host enrolled after the
discoverer's last evaluation), so its LAN-UNMANAGED-DEVICE finding resolves within a
policy check instead of at the next day's re-evaluation.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from rules.policy.scoring import score_results
from server.clock import Clock, utc_now
from server.evaluation.lan import ManagedLan
from server.evaluation.loaded_policy import ServerPolicy
from server.storage.database import Database, add_unless_present
from server.storage.fact_store import load_facts
from server.storage.findings import update_findings
from server.storage.models import Host, PolicyState, Report
from server.storage.report_store import set_score
from server.storage.rule_results import write_results

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
_STATE_ID = 1


@dataclass(frozen=True)
class ReevalReport:
    ran: bool  # False: another replica holds the lease
    hosts: int = 0


class Reevaluator:
    def __init__(
        self, database: Database, clock: Clock = utc_now, owner: str | None = None
    ) -> None:
        self._database = database
        self._clock = clock
        self.owner = owner or uuid.uuid4().hex

    def pending(self, policy: ServerPolicy) -> bool:
        """Whether some host was evaluated with another policy, or before today (one
        cheap query): waivers expire by date, also for hosts that stopped reporting.
        Or whether an enrolment queued some agency's discovering hosts (`lan`)."""
        with self._database.session() as session:
            stale = _stale_hosts(policy, _day_start(self._clock()))
            if session.scalar(stale.limit(1)) is not None:
                return True
        return policy.lan is not None and policy.lan.queued()

    def run(self, policy: ServerPolicy) -> ReevalReport:
        """Re-evaluate every host not at `policy`'s fingerprint, if this replica gets
        the lease; renews the lease as it goes and releases it at the end."""
        if not self._acquire():
            return ReevalReport(ran=False)
        done = 0
        try:
            while True:
                with self._database.session() as session:
                    stale = _stale_hosts(policy, _day_start(self._clock()))
                    batch = list(session.scalars(stale.limit(100)))
                if not batch:
                    break
                for host_id in batch:
                    self._reevaluate(host_id, policy)
                    done += 1
                if not self._acquire():  # renew; lost it: let the new holder finish
                    return ReevalReport(ran=True, hosts=done)
            if policy.lan is not None:
                done += self._reevaluate_discoverers(policy, policy.lan)
            self._finish(policy)
        finally:
            self._release()
        return ReevalReport(ran=True, hosts=done)

    def _acquire(self) -> bool:
        now = self._clock()
        with self._database.write() as session:
            if session.get(PolicyState, _STATE_ID) is None:
                # False when another replica inserted it first: either way it exists.
                add_unless_present(session, PolicyState(id=_STATE_ID))
            statement = (
                update(PolicyState)
                .where(
                    PolicyState.id == _STATE_ID,
                    or_(
                        PolicyState.lease_owner.is_(None),
                        PolicyState.lease_owner == self.owner,
                        PolicyState.lease_expires_at < now,
                    ),
                )
                .values(
                    lease_owner=self.owner,
                    lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
                )
                .execution_options(synchronize_session=False)
            )
            result = cast(CursorResult[Any], session.execute(statement))
            return result.rowcount == 1

    def _release(self) -> None:
        with self._database.write() as session:
            session.execute(
                update(PolicyState)
                .where(PolicyState.id == _STATE_ID, PolicyState.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    def _finish(self, policy: ServerPolicy) -> None:
        with self._database.write() as session:
            session.execute(
                update(PolicyState)
                .where(PolicyState.id == _STATE_ID)
                .values(fingerprint=policy.fingerprint, updated_at=self._clock())
                .execution_options(synchronize_session=False)
            )

    def _reevaluate_discoverers(self, policy: ServerPolicy, lan: ManagedLan) -> int:
        """The discovering hosts of the agencies `lan` queued, evaluated again now."""
        done = 0
        for agency, agent_ids in sorted(lan.refresh_queue().items()):
            with self._database.session() as session:
                ids = list(
                    session.scalars(
                        select(Host.id)
                        .where(Host.agency_id == agency, Host.agent_id.in_(sorted(agent_ids)))
                        .order_by(Host.id)
                    )
                )
            for host_id in ids:
                self._reevaluate(host_id, policy, force=True)
                done += 1
            # Not settled (the new host's report not committed yet): tried again next run.
            lan.settle(agency)
        return done

    def _reevaluate(self, host_id: int, policy: ServerPolicy, force: bool = False) -> None:
        now = self._clock()
        with self._database.write() as session:
            host = session.scalars(
                select(Host).where(Host.id == host_id).with_for_update()
            ).one_or_none()
            if host is None or (not force and _is_current(host, policy, _day_start(now))):
                return
            report = _latest_report(session, host)
            if report is None:
                host.policy_fingerprint = policy.fingerprint
                host.evaluated_at = now  # or the batch loop would pick it again
                return
            facts = load_facts(session, report)
            outcome = policy.evaluate(
                facts, host.agency_id, host.hostname, host.agent_id, now.date()
            )
            score = score_results(outcome.results, policy.weights)
            # The whole set at the host's latest report: a removed rule's row ends there.
            write_results(session, host.id, report.id, outcome.results, chain=True, full=True)
            report.evaluated = True
            report.score_ratio = score.ratio
            set_score(host, score)
            host.results_report_pk = report.id
            host.results_collected_at = report.collected_at
            host.policy_fingerprint = policy.fingerprint
            host.evaluated_at = now
            # Observation time stays the report's: a rule removed or waived resolves
            # findings as of the facts the decision was made on.
            update_findings(session, host.id, outcome.results, report.collected_at)


def _day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _is_current(host: Host, policy: ServerPolicy, day_start: datetime) -> bool:
    return (
        host.policy_fingerprint == policy.fingerprint
        and host.evaluated_at is not None
        and host.evaluated_at >= day_start
    )


def _stale_hosts(policy: ServerPolicy, day_start: datetime) -> Any:
    """Hosts evaluated with another policy, or not yet today."""
    return (
        select(Host.id)
        .where(
            or_(
                Host.policy_fingerprint.is_(None),
                Host.policy_fingerprint != policy.fingerprint,
                Host.evaluated_at.is_(None),
                Host.evaluated_at < day_start,
            )
        )
        .order_by(Host.id)
    )


def _latest_report(session: Session, host: Host) -> Report | None:
    if host.last_report_pk is not None:
        return session.get(Report, host.last_report_pk)
    return session.scalars(
        select(Report)
        .where(Report.host_id == host.id, Report.report_id == host.last_report_id)
        .limit(1)
    ).one_or_none()


def last_applied_fingerprint(database: Database) -> tuple[str | None, datetime | None]:
    with database.session() as session:
        state = session.get(PolicyState, _STATE_ID)
        return (state.fingerprint, state.updated_at) if state is not None else (None, None)
