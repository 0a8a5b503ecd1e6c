"""The audit model: one dated, reproducible picture of an agency (or the province).

Built from the stored history only, as observed at a cut-off time (`as_of`): each
host's newest evaluated report collected before the cut-off gives its rule results
(score, rank, framework compliance); findings are those first seen before the
cut-off and not resolved by then, with their age at the cut-off. Nothing here reads
the clock, so the same `as_of` gives the same model later (see docs/audit.md for the
two things the stored history cannot replay: a late delivery from an agent's spool of
an observation older than the cut-off, and a finding resolved before the cut-off and
reopened after it).

The renderers (`server.reports`) read this model only (`server.read.audit_views`);
the read API serves it as JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from rules.language.model import Localized, RuleSet, Severity
from rules.policy.bundle import Policy
from rules.policy.frameworks import Framework
from rules.policy.scopes import Scopes
from rules.policy.scoring import score_results
from rules.policy.waivers import Waiver
from rules.results import RuleResult, Status
from server.errors import ForbiddenError, NotFoundError
from server.read.audit_compliance import compliance, text_of
from server.read.audit_history import excluded_hosts, remediation, waiver_rows
from server.read.audit_hosts import host_row, load_host_facts
from server.read.audit_lan import lan_sections, not_assessed
from server.read.audit_views import (
    AUDIT_SCHEMA,
    SEVERITIES,
    AgencyAudit,
    AgencyStanding,
    AuditFinding,
    AuditReport,
    HostRow,
    PackVersion,
    SeverityCounts,
    TrendPoint,
    UrgentAction,
)
from server.read.audit_vulns import not_assessed as vulns_not_assessed
from server.read.audit_vulns import vuln_sections
from server.read.levels import host_levels
from server.storage.models import Agency, Finding, FindingStatus, Host, Report, RuleResultRow
from server.storage.rule_results import has_results, in_effect
from server.vulns.matching import VulnMatcher

URGENT_ACTIONS = 10
TREND_POINTS = 4  # intervals between the previous period and the cut-off (quarters)
_NO_TITLE = Localized("", "")
_CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit judges by, as plain values (the read side knows no loader)."""

    ruleset: RuleSet
    frameworks: tuple[Framework, ...]
    weights: Mapping[Severity, float]
    fingerprint: str
    waivers: tuple[Waiver, ...] = ()
    # The security levels (cấp độ) of hosts: `security-level-<N>` groups.
    scopes: Scopes = field(default_factory=Scopes)
    # The loaded feed store the vulnerability section is matched against (None: none).
    vulns: VulnMatcher | None = None

    @classmethod
    def of(
        cls,
        policy: Policy,
        fingerprint: str,
        weights: Mapping[Severity, float],
        vulns: VulnMatcher | None = None,
    ) -> AuditPolicy:
        """The audit's view of a loaded policy (the collector's, with its fingerprint)."""
        return cls(
            policy.ruleset,
            policy.frameworks,
            weights,
            fingerprint,
            policy.waivers,
            policy.scopes,
            vulns,
        )


@dataclass(frozen=True)
class _HostState:
    host_id: int
    agency: str
    label: str
    agent_id: str
    report_pk: int
    collected_at: datetime
    results: tuple[RuleResult, ...]


def _host_states(session: Session, cutoff: datetime, agency: str | None) -> list[_HostState]:
    """Each host's newest evaluated, applied report collected before `cutoff`."""
    # Revision 0006: an evaluated report may store no row of its own (no outcome
    # changed); what counts is that results are in effect for it.
    evaluated = Report.evaluated.is_(True) & has_results(Report)
    latest = (
        select(Report.host_id, func.max(Report.collected_at).label("at"))
        .where(Report.applied.is_(True), Report.collected_at < cutoff, evaluated)
        .group_by(Report.host_id)
        .subquery()
    )
    query = (
        select(
            Report.id,
            Report.host_id,
            Report.collected_at,
            Host.agency_id,
            Host.label,
            Host.agent_id,
        )
        .join(latest, and_(Report.host_id == latest.c.host_id, Report.collected_at == latest.c.at))
        .join(Host, Host.id == Report.host_id)
        .where(Report.applied.is_(True), evaluated)
    )
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    chosen: dict[int, tuple[int, datetime, str, str, str]] = {}
    for report_pk, host_id, collected_at, agency_id, label, agent_id in session.execute(query):
        # Two reports of one host at the same instant: the later stored one wins.
        if host_id not in chosen or report_pk > chosen[host_id][0]:
            chosen[host_id] = (report_pk, collected_at, agency_id, label, agent_id)
    results: dict[int, list[RuleResult]] = defaultdict(list)
    by_report = {pk: host_id for host_id, (pk, *_rest) in chosen.items()}
    pks = sorted(by_report)
    for start in range(0, len(pks), _CHUNK):
        rows = session.execute(
            in_effect(
                pks[start : start + _CHUNK],
                RuleResultRow.rule_id,
                RuleResultRow.severity,
                RuleResultRow.status,
            )
        )
        for report_pk, rule_id, severity, status in rows:
            results[by_report[report_pk]].append(
                RuleResult(rule_id, Severity(severity), Status(status), _NO_TITLE)
            )
    return [
        _HostState(host_id, agency_id, label, agent_id, pk, at, tuple(results[host_id]))
        for host_id, (pk, at, agency_id, label, agent_id) in sorted(chosen.items())
    ]


def _standings(
    session: Session,
    policy: AuditPolicy,
    cutoff: datetime,
    previous: datetime,
    stale_after: timedelta,
) -> tuple[list[AgencyStanding], list[_HostState]]:
    """Every agency's standing, ranked (the rank is among all of them), and the
    hosts' states at the cut-off."""
    now_states = _host_states(session, cutoff, None)
    before = defaultdict(list)
    for state in _host_states(session, previous, None):
        before[state.agency].append(state.results)
    # The trend: the agency score at evenly spaced cut-offs from the previous period
    # to this one (each one a pooled score over the hosts' results at that time).
    step = (cutoff - previous) / TREND_POINTS
    moments = [previous + step * i for i in range(1, TREND_POINTS)]
    trend: dict[str, list[TrendPoint]] = defaultdict(list)
    agencies = list(session.execute(select(Agency.id, Agency.name)))
    for moment in moments:
        pooled: dict[str, list[RuleResult]] = defaultdict(list)
        for state in _host_states(session, moment, None):
            pooled[state.agency].extend(state.results)
        for agency_id, _name in agencies:
            ratio = score_results(pooled.get(agency_id, []), policy.weights).ratio
            trend[agency_id].append(TrendPoint(at=moment, score=ratio))
    current = defaultdict(list)
    for state in now_states:
        current[state.agency].append(state)
    entries = []
    for agency_id, name in agencies:
        states = current.get(agency_id, [])
        score = score_results((r for s in states for r in s.results), policy.weights).ratio
        earlier = score_results(
            (r for results in before.get(agency_id, []) for r in results), policy.weights
        ).ratio
        entries.append(
            AgencyStanding(
                agency=agency_id,
                name=name,
                rank=0,
                score=score,
                previous_score=earlier,
                change=None if score is None or earlier is None else score - earlier,
                trend=[
                    TrendPoint(at=previous, score=earlier),
                    *trend[agency_id],
                    TrendPoint(at=cutoff, score=score),
                ],
                hosts=len(states),
                stale_hosts=sum(1 for s in states if s.collected_at < cutoff - stale_after),
            )
        )
    # Unknown scores last; ties by id, so the order never depends on the database's.
    entries.sort(key=lambda e: (e.score is None, -(e.score or 0.0), e.agency))
    ranking = [e.model_copy(update={"rank": i}) for i, e in enumerate(entries, start=1)]
    return ranking, now_states


def _findings(
    session: Session, policy: AuditPolicy, cutoff: datetime, agency: str
) -> list[AuditFinding]:
    query = (
        select(Finding, Host.label, Host.agent_id)
        .join(Host, Finding.host_id == Host.id)
        .where(
            Host.agency_id == agency,
            Finding.first_seen < cutoff,
            (Finding.resolved_at.is_(None)) | (Finding.resolved_at >= cutoff),
        )
    )
    answer = []
    for finding, label, agent_id in session.execute(query):
        rule = policy.ruleset.get(finding.rule_id)
        # Resolved after the cut-off: it was failing at the cut-off. Whether a waiver
        # covered it then is not kept, so it is shown open (never hidden as waived).
        waived = finding.status is FindingStatus.WAIVED
        answer.append(
            AuditFinding(
                agency=agency,
                host=label,
                agent_id=agent_id,
                rule_id=finding.rule_id,
                title=text_of(rule.title if rule else None),
                severity=Severity(finding.severity),
                status=FindingStatus.WAIVED if waived else FindingStatus.OPEN,
                item_key=finding.item_key,
                evidence=finding.evidence,
                message=text_of(finding.message),
                remediation=text_of(rule.remediation if rule else None),
                first_seen=finding.first_seen,
                age_days=max(0.0, (cutoff - finding.first_seen).total_seconds() / 86400),
            )
        )
    answer.sort(key=lambda f: (-f.severity.rank, f.host, f.rule_id, f.item_key))
    return answer


def _hosts(
    session: Session,
    policy: AuditPolicy,
    states: list[_HostState],
    cutoff: datetime,
    stale_after: timedelta,
    *,
    levels: Mapping[int, int | None],
) -> list[HostRow]:
    facts = load_host_facts(session, (s.report_pk for s in states))
    return [
        host_row(
            label=s.label,
            agent_id=s.agent_id,
            collected_at=facts[s.report_pk][0],
            facts=facts[s.report_pk][1],
            results=s.results,
            weights=policy.weights,
            cutoff=cutoff,
            stale_after=stale_after,
            security_level=levels.get(s.host_id),
        )
        for s in sorted(states, key=lambda s: s.label)
    ]


def _urgent(findings: Iterable[AuditFinding]) -> list[UrgentAction]:
    groups: dict[str, list[AuditFinding]] = defaultdict(list)
    for finding in findings:
        if finding.status is FindingStatus.OPEN:
            groups[finding.rule_id].append(finding)
    actions = [
        UrgentAction(
            rule_id=rule_id,
            title=group[0].title,
            severity=group[0].severity,
            hosts=len({f.agent_id for f in group}),
            findings=len(group),
            oldest_first_seen=min(f.first_seen for f in group),
            remediation=group[0].remediation,
        )
        for rule_id, group in groups.items()
    ]
    actions.sort(key=lambda a: (-a.severity.rank, -a.hosts, a.oldest_first_seen, a.rule_id))
    return actions[:URGENT_ACTIONS]


def build_audit(
    session: Session,
    policy: AuditPolicy,
    *,
    as_of: datetime,
    agency: str | None,
    stale_after_seconds: int,
    previous_as_of: datetime | None = None,
    scope: str | None = None,
) -> AuditReport:
    """The audit of `agency` (or of every agency when None) as observed before `as_of`.

    `previous_as_of` (default: one year earlier) is the period the change is
    measured from. Raises NotFoundError for an agency that does not exist. `scope`
    (an agency-scoped token's agency) reads that agency alone: another agency is not
    found, the province forbidden, and the ranking holds its own standing only, at
    its rank among every agency (`ranked_agencies` of them): the rank is public for
    the evaluation, the other agencies' scores and names are not.
    """
    if scope is not None and agency is None:
        raise ForbiddenError("insufficient_scope", "this token reads only its own agency")
    if scope is not None and agency != scope:
        raise NotFoundError("not_found", f"no agency {agency!r}")
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    previous = previous_as_of or as_of - timedelta(days=365)
    if previous >= as_of:
        raise ValueError("the previous period must end before as_of")  # callers check
    if agency is not None and session.get(Agency, agency) is None:
        raise NotFoundError("not_found", f"no agency {agency!r}")
    stale_after = timedelta(seconds=stale_after_seconds)
    ranking, states = _standings(session, policy, as_of, previous, stale_after)
    ranked_agencies = len(ranking)
    if scope is not None:
        ranking = [s for s in ranking if s.agency == scope]
        states = [s for s in states if s.agency == scope]
    chosen = [s for s in ranking if agency is None or s.agency == agency]
    levels = host_levels(session, policy.scopes, agency=agency)
    # The LAN from the same reports as the rest (server.read.audit_lan), of the
    # reported agencies only (`states` holds every agency's, for the ranking).
    lans = lan_sections(
        session,
        policy.ruleset,
        (
            (s.agent_id, s.agency, s.label, s.report_pk, s.collected_at)
            for s in states
            if agency is None or s.agency == agency
        ),
    )
    # The vulnerabilities from the same reports, at the cut-off's day (the store is
    # today's: server.read.audit_vulns).
    day = (as_of - timedelta(microseconds=1)).date()
    vulns = vuln_sections(
        session,
        policy.vulns,
        ((s.agency, s.label, s.report_pk) for s in states if agency is None or s.agency == agency),
        day,
    )
    audits = []
    for standing in chosen:
        own = [s for s in states if s.agency == standing.agency]
        findings = _findings(session, policy, as_of, standing.agency)
        counts: dict[str, int] = defaultdict(int)
        for finding in findings:
            if finding.status is FindingStatus.OPEN:
                counts[finding.severity.value] += 1
        audits.append(
            AgencyAudit(
                standing=standing,
                severity_counts=SeverityCounts(**counts),
                waived_findings=sum(1 for f in findings if f.status is FindingStatus.WAIVED),
                remediation=remediation(session, standing.agency, as_of, previous),
                waivers=waiver_rows(policy.waivers, standing.agency, as_of),
                excluded_hosts=excluded_hosts(
                    session, standing.agency, {s.host_id for s in states}, as_of
                ),
                hosts=_hosts(session, policy, own, as_of, stale_after, levels=levels),
                urgent_actions=_urgent(findings),
                frameworks=compliance(policy.frameworks, own, levels),
                findings=findings,
                lan=lans.get(standing.agency) or not_assessed(),
                vulnerabilities=vulns.get(standing.agency) or vulns_not_assessed(policy.vulns, day),
            )
        )
    return AuditReport(
        schema=AUDIT_SCHEMA,
        scope="agency" if agency is not None else "province",
        as_of=as_of,
        previous_as_of=previous,
        policy_fingerprint=policy.fingerprint,
        packs=[PackVersion(id=p.id, version=p.version) for p in policy.ruleset.packs],
        weights={s.value: float(policy.weights.get(s, 0.0)) for s in SEVERITIES},
        stale_after_seconds=stale_after_seconds,
        ranking=ranking,
        ranked_agencies=ranked_agencies,
        agencies=audits,
    )
