"""Storing one report: host, report, facts by domain, rule results, findings.

Everything here runs inside the single ingest transaction opened by the caller; it
raises and lets the caller roll back, so a refused report leaves no row behind.
Storage takes plain values (`ReportHeader`, token id, agency id) and knows neither
the ingest payload nor the read side: the caller binds the token (`server.auth`)
in the same transaction and turns the stored `Host` into whatever it publishes.

Which report moves the host's state ("applied"): the first one; then, within one
`seq_epoch`, a higher `seq`; a report of a different epoch (the agent's counter was
reset: reinstall, wiped state) when it was collected after the host's newest one.
Anything else is history only: stored, never overwriting newer state or findings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from rules.language.model import Severity
from rules.policy.scoring import Score
from rules.results import RuleResult
from server.errors import ServerError
from server.storage.fact_store import SplitFacts, report_map, store_domains, store_map
from server.storage.findings import FindingChanges, update_findings
from server.storage.models import Host, Report
from server.storage.rule_results import write_results

# Tables for the Core statements of the ingest path: no entities built, no autoflush.
_HOSTS = Host.metadata.tables[Host.__tablename__]
_REPORTS = Report.metadata.tables[Report.__tablename__]


class DuplicateReport(ServerError):  # noqa: N818 - a signal, not an error
    """The report id is already stored: answer `duplicate`, store nothing."""


@dataclass(frozen=True)
class Evaluated:
    results: list[RuleResult]
    score: Score


@dataclass(frozen=True)
class HostPosture:
    """Posture read from a report's facts for the metrics; None is "unknown"."""

    updates_security: int | None = None
    updates_other: int | None = None
    update_oldest_pending_at: datetime | None = None
    reboot_required: bool | None = None
    cert_earliest_expiry_at: datetime | None = None
    exposed_services: int | None = None
    spool_dropped_reports: int = 0  # this report's count (absent in the facts: 0)


@dataclass(frozen=True)
class ReportHeader:
    """What storage needs to know about a report besides its facts."""

    report_id: str
    agent_id: str
    seq: int
    seq_epoch: str | None
    collected_at: datetime
    agent_version: str
    hostname: str
    os_pretty_name: str | None
    posture: HostPosture = HostPosture()


@dataclass(frozen=True)
class Reporter:
    """The verified token a report came with (bound to the agent by the caller)."""

    token_id: str
    agency_id: str


@dataclass(frozen=True)
class StoredReport:
    report_pk: int
    newest: bool  # whether it became the host's state
    evaluated: bool  # False: unchanged facts, the host's current results still hold
    host: Host  # the ORM row, valid inside the caller's transaction only
    findings: FindingChanges | None
    score_ratio: float | None
    failing: int


@dataclass(frozen=True)
class HostState:
    """What the ingest reads of a host before its write transaction (plain columns):
    whether a report would be its newest, whether its results may be reused, and its
    domains' blobs (which domains were sent unchanged)."""

    seq_epoch: str | None
    last_seq: int
    last_collected_at: datetime
    facts_digest: str | None
    policy_fingerprint: str | None
    evaluated_at: datetime | None
    results_report_pk: int | None
    domain_blobs: dict[str, Any] | None


_STATE_COLUMNS = [_HOSTS.c[field.name] for field in fields(HostState)]


def read_host_state(
    session: Session, agent_id: str, report_id: str
) -> tuple[HostState | None, bool]:
    """The agent's host state and whether `report_id` is stored already: one round
    trip for a known host (the EXISTS rides along), two for a new one."""
    known = exists().where(_REPORTS.c.report_id == report_id)
    connection = session.connection()
    row = connection.execute(
        select(known.label("known"), *_STATE_COLUMNS).where(_HOSTS.c.agent_id == agent_id)
    ).first()
    if row is None:
        return None, bool(connection.execute(select(known)).scalar())
    return HostState(*row[1:]), bool(row.known)


def lock_host(session: Session, agent_id: str) -> Host | None:
    """The agent's host row, locked for this transaction (FOR UPDATE on PostgreSQL):
    reports of one agent update its host one at a time."""
    return session.scalars(
        select(Host).where(Host.agent_id == agent_id).with_for_update()
    ).one_or_none()


def is_newest(host: Host | HostState | None, document: ReportHeader) -> bool:
    if host is None:
        return True
    if document.seq_epoch == host.seq_epoch:
        return document.seq > host.last_seq
    return document.collected_at > host.last_collected_at


def can_reuse_results(
    host: Host | HostState | None, digest: str, fingerprint: str, now: datetime
) -> bool:
    """Unchanged facts, same policy, evaluated today (waivers expire by date)."""
    return (
        host is not None
        and host.facts_digest == digest
        and host.policy_fingerprint == fingerprint
        and host.evaluated_at is not None
        and host.evaluated_at.date() == now.date()
        and host.results_report_pk is not None
    )


def store_report(
    session: Session,
    host: Host | None,
    reporter: Reporter,
    document: ReportHeader,
    split: SplitFacts,
    *,
    fingerprint: str,
    evaluated: Evaluated | None,
    evaluate: Callable[[], Evaluated],
    received_at: datetime,
) -> StoredReport:
    """Store the report; `evaluated` None means "not evaluated yet": unchanged facts
    reuse the host's results, anything else calls `evaluate`. `host` is the agent's
    row from `lock_host` (None for a new agent), already checked against the token."""
    connection = session.connection()
    if connection.execute(
        select(_REPORTS.c.id).where(_REPORTS.c.report_id == document.report_id)
    ).first():
        raise DuplicateReport(document.report_id)
    newest = is_newest(host, document)
    reuse = newest and can_reuse_results(host, split.digest, fingerprint, received_at)
    if not reuse and evaluated is None:
        evaluated = evaluate()
    if host is None:
        host = Host(
            agent_id=document.agent_id,
            agency_id=reporter.agency_id,
            label=free_label(session, reporter.agency_id, document.hostname, document.agent_id),
        )
        session.add(host)
    if newest:
        _set_host_state(host, reporter, document, evaluated, received_at)
        host.facts_digest = split.digest
    # Every delivered report counts its drops, newest or not (each is a delivery).
    dropped = document.posture.spool_dropped_reports
    host.spool_dropped_reports = (host.spool_dropped_reports or 0) + dropped
    session.flush()  # assigns host.id
    domains = store_domains(session, host, split, current=newest, now=received_at)
    # Revision 0008: the envelope and the domain map are one blob per host while
    # unchanged; the row holds its id (`facts` empty, `domains` NULL).
    text = report_map(
        split,
        domains,
        report_id=document.report_id,
        agent_id=document.agent_id,
        seq=document.seq,
        collected_at=document.collected_at,
        agent_version=document.agent_version,
    )
    map_blob_id = store_map(session, host, text, current=newest, now=received_at)
    score_ratio = evaluated.score.ratio if evaluated is not None else host.score_ratio
    # Core, not session.add: the report row is written once and never changed here.
    inserted = connection.execute(
        _REPORTS.insert().values(
            report_id=document.report_id,
            host_id=host.id,
            seq=document.seq,
            collected_at=document.collected_at,
            received_at=received_at,
            agent_version=document.agent_version,
            facts="",
            domains=None,
            map_blob_id=map_blob_id,
            # Not stored per report since revision 0007 (nothing read it): the host's
            # facts_digest is what decides whether facts changed.
            facts_digest=None,
            applied=newest,
            evaluated=evaluated is not None,
            score_ratio=score_ratio,
        )
    ).inserted_primary_key
    if inserted is None:
        raise ServerError("the database returned no id for the inserted report")
    report_pk = int(inserted[0])
    changes = None
    if evaluated is not None:
        # The host's newest report continues its chain of results (only changed rules
        # stored; all of them when the policy changed); a late one is history only.
        full = host.policy_fingerprint != fingerprint
        write_results(session, host.id, report_pk, evaluated.results, chain=newest, full=full)
    if newest:
        host.last_report_pk = report_pk
        if evaluated is not None:
            host.results_report_pk = report_pk
            host.results_collected_at = document.collected_at
            host.policy_fingerprint = fingerprint
            host.evaluated_at = received_at
            # An older seq arriving late is history only: it must not reopen findings
            # that a newer report already resolved.
            changes = update_findings(session, host.id, evaluated.results, document.collected_at)
        # Unchanged facts write no finding: their sightings are implied by the host's
        # last_collected_at (`findings.last_seen_of`).
    session.flush()
    return StoredReport(
        report_pk,
        newest,
        evaluated is not None,
        host,
        changes,
        score_ratio,
        evaluated.score.failed if evaluated is not None else host.failed_count,
    )


def free_label(session: Session, agency_id: str, hostname: str, agent_id: str) -> str:
    """The `host` label of a new host: its hostname when free in its agency, else
    hostname/<agent id prefix>. Decided once: it never changes afterwards."""
    # Cut before checking: a label cut after the check could collide with one taken.
    # 120 + "/" + a 128-character agent id stays within the 255-character column, and
    # agent ids are unique, so the last candidate is always free.
    name = hostname[:120]
    for label in (name, f"{name}/{agent_id[:8]}", f"{name}/{agent_id}"):
        taken = session.scalar(
            select(Host.id).where(Host.agency_id == agency_id, Host.label == label)
        )
        if taken is None:
            return label
    return f"{name}/{agent_id}"


def _set_host_state(
    host: Host,
    reporter: Reporter,
    document: ReportHeader,
    evaluated: Evaluated | None,
    received_at: datetime,
) -> None:
    host.token_id = reporter.token_id
    host.hostname = document.hostname
    host.os_pretty_name = document.os_pretty_name
    host.agent_version = document.agent_version
    host.last_report_id = document.report_id
    host.last_seq = document.seq
    host.seq_epoch = document.seq_epoch
    host.last_collected_at = document.collected_at
    host.last_received_at = received_at
    _set_posture(host, document.posture)
    if evaluated is not None:
        set_score(host, evaluated.score)


def set_score(host: Host, score: Score) -> None:
    failing = score.failing_by_severity
    host.score_ratio = score.ratio
    host.score_weight = score.possible_weight
    host.passed_count = score.passed
    host.failed_count = score.failed
    host.error_count = score.errors
    host.failing_critical = failing.get(Severity.CRITICAL, 0)
    host.failing_high = failing.get(Severity.HIGH, 0)
    host.failing_medium = failing.get(Severity.MEDIUM, 0)
    host.failing_low = failing.get(Severity.LOW, 0)
    host.failing_info = failing.get(Severity.INFO, 0)


def _set_posture(host: Host, posture: HostPosture) -> None:
    host.updates_security = posture.updates_security
    host.updates_other = posture.updates_other
    host.update_oldest_pending_at = posture.update_oldest_pending_at
    host.reboot_required = posture.reboot_required
    host.cert_earliest_expiry_at = posture.cert_earliest_expiry_at
    host.exposed_services = posture.exposed_services
