"""Storing one evaluated report: token binding, host, report, results, findings.

Everything here runs inside the single ingest transaction opened by the caller; it
raises and lets the caller roll back, so a refused report leaves no row behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from rules.model import Severity
from rules.results import RuleResult
from rules.scoring import Score
from server.errors import ForbiddenError, ServerError, UnauthorizedError
from server.findings import FindingChanges, update_findings
from server.models import AgentToken, Host, Report, RuleResultRow
from server.payload import FactsDocument
from server.state import HostSnapshot, snapshot_of
from server.tokens import Credential


class DuplicateReport(ServerError):  # noqa: N818 - a signal, not an error
    """The report id is already stored: answer `duplicate`, store nothing."""


@dataclass(frozen=True)
class StoredReport:
    report_pk: int
    newest: bool  # whether it became the host's state (highest seq so far)
    host: HostSnapshot
    findings: FindingChanges | None


def bind_token(session: Session, credential: Credential, agent_id: str, now: datetime) -> None:
    """Bind the token to `agent_id` on first use; refuse it for any other agent.

    One conditional UPDATE, so two first reports racing with different agent ids
    cannot both bind the token; revocation since authentication is caught here too.
    """
    statement = (
        update(AgentToken)
        .where(
            AgentToken.id == credential.token_id,
            AgentToken.revoked_at.is_(None),
            or_(AgentToken.agent_id.is_(None), AgentToken.agent_id == agent_id),
        )
        .values(agent_id=agent_id, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    # An UPDATE always yields a CursorResult; only its rowcount matters here.
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount == 1:
        return
    token = session.get(AgentToken, credential.token_id)
    if token is None or token.revoked_at is not None:
        raise UnauthorizedError("invalid_token", "the bearer token has been revoked")
    raise ForbiddenError(
        "token_bound_to_other_agent",
        f"this token belongs to another agent; agent {agent_id!r} needs its own token",
        "agent_id",
    )


def store_report(
    session: Session,
    credential: Credential,
    document: FactsDocument,
    *,
    results: list[RuleResult],
    score: Score,
    received_at: datetime,
) -> StoredReport:
    bind_token(session, credential, document.agent_id, received_at)
    host = session.scalars(
        # FOR UPDATE (PostgreSQL): reports of one agent update its host one at a time.
        select(Host).where(Host.agent_id == document.agent_id).with_for_update()
    ).one_or_none()
    if host is not None and host.agency_id != credential.agency_id:
        # agent_id is chosen by the agent: without this, one agency's token could
        # overwrite another agency's host.
        raise ForbiddenError(
            "agent_of_other_agency",
            f"agent {document.agent_id!r} is registered to another agency",
            "agent_id",
        )
    if session.scalar(select(Report.id).where(Report.report_id == document.report_id)):
        raise DuplicateReport(document.report_id)
    newest = host is None or document.seq > host.last_seq
    if host is None:
        host = Host(agent_id=document.agent_id, agency_id=credential.agency_id)
        session.add(host)
    if newest:
        _set_host_state(host, credential, document, score, received_at)
    session.flush()  # assigns host.id
    report = Report(
        report_id=document.report_id,
        host_id=host.id,
        seq=document.seq,
        collected_at=document.collected_at,
        received_at=received_at,
        agent_version=document.agent_version,
        facts=document.text,
        score_ratio=score.ratio,
    )
    session.add(report)
    session.flush()  # assigns report.id
    session.add_all(
        RuleResultRow(
            report_pk=report.id,
            rule_id=result.rule_id,
            severity=result.severity.value,
            status=result.status.value,
            items=[item.to_dict() for item in result.items],
            errors=list(result.errors),
        )
        for result in results
    )
    changes = None
    if newest:
        # An older seq arriving late is history only: it must not reopen findings
        # that a newer report already resolved.
        changes = update_findings(session, host.id, results, document.collected_at)
    session.flush()
    return StoredReport(report.id, newest, snapshot_of(host), changes)


def _set_host_state(
    host: Host,
    credential: Credential,
    document: FactsDocument,
    score: Score,
    received_at: datetime,
) -> None:
    failing = score.failing_by_severity
    host.token_id = credential.token_id
    host.hostname = document.hostname
    host.os_pretty_name = document.os_pretty_name
    host.agent_version = document.agent_version
    host.last_report_id = document.report_id
    host.last_seq = document.seq
    host.last_collected_at = document.collected_at
    host.last_received_at = received_at
    host.score_ratio = score.ratio
    host.passed_count = score.passed
    host.failed_count = score.failed
    host.error_count = score.errors
    host.failing_critical = failing.get(Severity.CRITICAL, 0)
    host.failing_high = failing.get(Severity.HIGH, 0)
    host.failing_medium = failing.get(Severity.MEDIUM, 0)
    host.failing_low = failing.get(Severity.LOW, 0)
    host.failing_info = failing.get(Severity.INFO, 0)
