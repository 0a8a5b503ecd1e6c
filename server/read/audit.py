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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from rules.language.model import RuleSet, Severity
from rules.policy.bundle import Policy
from rules.policy.frameworks import Framework
from rules.policy.scopes import Scopes
from rules.policy.waivers import Waiver
from rules.results import RuleResult
from server.errors import ForbiddenError, NotFoundError
from server.read.audit_compliance import ComplianceTally
from server.read.audit_detail import StoredDetail, materialize
from server.read.audit_findings import count_findings, severity_counts, urgent_actions
from server.read.audit_history import excluded_hosts, remediation, waiver_rows
from server.read.audit_lan import lan_sections, not_assessed
from server.read.audit_states import HostState, host_states, pooled, standings
from server.read.audit_views import (
    AUDIT_SCHEMA,
    SEVERITIES,
    AgencyAudit,
    AuditReport,
    PackVersion,
)
from server.read.audit_vulns import not_assessed as vulns_not_assessed
from server.read.audit_vulns import vuln_sections
from server.read.levels import host_levels
from server.storage.models import Agency, FindingStatus
from server.vulns.matching import VulnMatcher


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
    """The whole audit of `agency` (or of every agency when None) as observed before
    `as_of`: `audit_outline` with every finding and host read into its lists (the
    JSON answer; documents stream them instead)."""
    outline, detail = audit_outline(
        session,
        policy,
        as_of=as_of,
        agency=agency,
        stale_after_seconds=stale_after_seconds,
        previous_as_of=previous_as_of,
        scope=scope,
    )
    return materialize(outline, detail)


def audit_outline(
    session: Session,
    policy: AuditPolicy,
    *,
    as_of: datetime,
    agency: str | None,
    stale_after_seconds: int,
    previous_as_of: datetime | None = None,
    scope: str | None = None,
) -> tuple[AuditReport, StoredDetail]:
    """The audit of `agency` (or of every agency when None) as observed before `as_of`,
    as an outline (each agency's `findings` and `hosts` empty) and the detail that
    reads them from `session` (which must stay open while it is read).

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
    levels = host_levels(session, policy.scopes, agency=agency)
    states = host_states(session, as_of, None)
    # One pass over the hosts' results: the agencies' pooled counts (every agency,
    # for the ranking) and, for the reported ones, compliance.
    tallies: dict[str, ComplianceTally] = {}

    def visit(state: HostState, results: tuple[RuleResult, ...]) -> None:
        # (With a scope, `agency` is the scope's: checked above.)
        if agency is None or state.agency == agency:
            tally = tallies.setdefault(state.agency, ComplianceTally(levels))
            tally.add(state.host_id, state.label, results)

    current = pooled(session, states, visit)
    ranking = standings(
        session,
        policy.weights,
        (states, current),
        cutoff=as_of,
        previous=previous,
        stale_after=stale_after,
    )
    ranked_agencies = len(ranking)
    counted = {s.host_id for s in states}
    if scope is not None:
        ranking = [s for s in ranking if s.agency == scope]
    reported = [s for s in states if agency is None or s.agency == agency]
    chosen = [s for s in ranking if agency is None or s.agency == agency]
    by_agency: dict[str, list[HostState]] = defaultdict(list)
    for state in reported:
        by_agency[state.agency].append(state)
    # The LAN from the same reports as the rest (server.read.audit_lan), of the
    # reported agencies only (`states` holds every agency's, for the ranking); one
    # agency at a time, so the discovery facts read are one agency's, not a province's.
    lans = {}
    for own in by_agency.values():
        lans.update(
            lan_sections(
                session,
                policy.ruleset,
                ((s.agent_id, s.agency, s.label, s.report_pk, s.collected_at) for s in own),
            )
        )
    # The vulnerabilities from the same reports, at the cut-off's day (the store is
    # today's: server.read.audit_vulns).
    day = (as_of - timedelta(microseconds=1)).date()
    vulns = vuln_sections(
        session, policy.vulns, ((s.agency, s.label, s.report_pk) for s in reported), day
    )
    audits = []
    for standing in chosen:
        counts = count_findings(session, as_of, standing.agency)
        tally = tallies.get(standing.agency) or ComplianceTally(levels)
        audits.append(
            AgencyAudit(
                standing=standing,
                severity_counts=severity_counts(counts),
                waived_findings=sum(
                    n for (_s, status), n in counts.items() if status is FindingStatus.WAIVED
                ),
                remediation=remediation(session, standing.agency, as_of, previous),
                waivers=waiver_rows(policy.waivers, standing.agency, as_of),
                excluded_hosts=excluded_hosts(session, standing.agency, counted, as_of),
                hosts=[],
                urgent_actions=urgent_actions(session, policy.ruleset, as_of, standing.agency),
                frameworks=tally.frameworks(policy.frameworks),
                findings=[],
                lan=lans.get(standing.agency) or not_assessed(),
                vulnerabilities=vulns.get(standing.agency) or vulns_not_assessed(policy.vulns, day),
            )
        )
    outline = AuditReport(
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
    detail = StoredDetail(
        session,
        policy.ruleset,
        policy.weights,
        cutoff=as_of,
        stale_after=stale_after,
        states=by_agency,
        levels=levels,
    )
    return outline, detail
