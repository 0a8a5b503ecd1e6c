"""Which report stands for each host at a cut-off, and the agencies' standings.

A host's state at a cut-off is its newest evaluated, applied report collected before
it. States are light (ids, label, time): their rule results are read 500 reports at
a time (`with_results`) and pooled per agency as counts of (severity, status), so a
province of 50,000 hosts never holds every host's results at once. The pooled score
is `rules.policy.scoring.score_results` over those counts (the same formula, docs/
scoring.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from rules.language.model import Localized, Severity
from rules.policy.scoring import score_results
from rules.results import RuleResult, Status
from server.read.audit_views import AgencyStanding, TrendPoint
from server.storage.models import Agency, Host, Report, RuleResultRow
from server.storage.rule_results import has_results, in_effect

TREND_POINTS = 4  # intervals between the previous period and the cut-off (quarters)
CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit
_NO_TITLE = Localized("", "")

Tally = Counter[tuple[Severity, Status]]


@dataclass(frozen=True)
class HostState:
    host_id: int
    agency: str
    label: str
    agent_id: str
    report_pk: int
    collected_at: datetime


def host_states(session: Session, cutoff: datetime, agency: str | None) -> list[HostState]:
    """Each host's newest evaluated, applied report collected before `cutoff`, in
    host id order."""
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
    chosen: dict[int, HostState] = {}
    for report_pk, host_id, collected_at, agency_id, label, agent_id in session.execute(query):
        # Two reports of one host at the same instant: the later stored one wins.
        if host_id not in chosen or report_pk > chosen[host_id].report_pk:
            chosen[host_id] = HostState(
                host_id, agency_id, label, agent_id, report_pk, collected_at
            )
    return [chosen[host_id] for host_id in sorted(chosen)]


def with_results(
    session: Session, states: Sequence[HostState]
) -> Iterator[tuple[HostState, tuple[RuleResult, ...]]]:
    """Each state with its rule results, in the order given, 500 reports at a time."""
    for start in range(0, len(states), CHUNK):
        chunk = states[start : start + CHUNK]
        results: dict[int, list[RuleResult]] = defaultdict(list)
        rows = session.execute(
            in_effect(
                [s.report_pk for s in chunk],
                RuleResultRow.rule_id,
                RuleResultRow.severity,
                RuleResultRow.status,
            )
        )
        for report_pk, rule_id, severity, status in rows:
            results[report_pk].append(
                RuleResult(rule_id, Severity(severity), Status(status), _NO_TITLE)
            )
        for state in chunk:
            yield state, tuple(results[state.report_pk])


Visit = Callable[[HostState, tuple[RuleResult, ...]], None]


def pooled(
    session: Session, states: Sequence[HostState], visit: Visit | None = None
) -> dict[str, Tally]:
    """agency -> counts of its hosts' results by (severity, status); `visit` sees each
    host's results on the way (compliance reads them in the same pass)."""
    tallies: dict[str, Tally] = defaultdict(Counter)
    for state, results in with_results(session, states):
        tallies[state.agency].update((r.severity, r.status) for r in results)
        if visit is not None:
            visit(state, results)
    return tallies


def score_of(tally: Tally | None, weights: Mapping[Severity, float]) -> float | None:
    """The pooled score of counted results (the host formula over the pool)."""
    results = (
        result
        for (severity, status), count in (tally or Counter()).items()
        for result in repeat(RuleResult("", severity, status, _NO_TITLE), count)
    )
    return score_results(results, weights).ratio


def standings(
    session: Session,
    weights: Mapping[Severity, float],
    now: tuple[list[HostState], Mapping[str, Tally]],
    *,
    cutoff: datetime,
    previous: datetime,
    stale_after: timedelta,
) -> list[AgencyStanding]:
    """Every agency's standing, ranked (the rank is among all of them); `now` is the
    hosts' states at the cut-off and their pooled counts."""
    now_states, current = now
    before = pooled(session, host_states(session, previous, None))
    # The trend: the agency score at evenly spaced cut-offs from the previous period
    # to this one (each one a pooled score over the hosts' results at that time).
    step = (cutoff - previous) / TREND_POINTS
    moments = [previous + step * i for i in range(1, TREND_POINTS)]
    trend: dict[str, list[TrendPoint]] = defaultdict(list)
    agencies = list(session.execute(select(Agency.id, Agency.name)))
    for moment in moments:
        at_moment = pooled(session, host_states(session, moment, None))
        for agency_id, _name in agencies:
            score = score_of(at_moment.get(agency_id), weights)
            trend[agency_id].append(TrendPoint(at=moment, score=score))
    hosts: Counter[str] = Counter()
    stale: Counter[str] = Counter()
    for state in now_states:
        hosts[state.agency] += 1
        stale[state.agency] += state.collected_at < cutoff - stale_after
    entries = []
    for agency_id, name in agencies:
        score = score_of(current.get(agency_id), weights)
        earlier = score_of(before.get(agency_id), weights)
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
                hosts=hosts[agency_id],
                stale_hosts=stale[agency_id],
            )
        )
    # Unknown scores last; ties by id, so the order never depends on the database's.
    entries.sort(key=lambda e: (e.score is None, -(e.score or 0.0), e.agency))
    return [e.model_copy(update={"rank": i}) for i, e in enumerate(entries, start=1)]
