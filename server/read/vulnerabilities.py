"""Known vulnerabilities per host, for the read API and the metrics.

Computed at read time from each host's latest stored `host` and `packages` facts and
the loaded feed store (`server.vulns.matching`): nothing vulnerability-specific is
stored in the database, so an import shows at once, on every replica alike. A host
that cannot be matched (no store, stale feed, release not covered) is listed with the
reason, never counted as clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.storage.fact_store import load_domains
from server.storage.models import Host
from server.vulns.matching import VulnMatcher

_DOMAINS = ("host", "packages")


@dataclass(frozen=True)
class HostMatch:
    agent_id: str
    hostname: str
    agency: str
    items: tuple[dict[str, Any], ...]
    problem: str | None  # why the host could not be matched; None when it was


@dataclass(frozen=True)
class Filters:
    agency: str | None = None
    agent_id: str | None = None
    state: str | None = None
    severity: str | None = None
    kev: bool | None = None

    def keep(self, item: dict[str, Any]) -> bool:
        return (
            (self.state is None or item["state"] == self.state)
            and (self.severity is None or item["severity"] == self.severity)
            and (self.kev is None or item["kev"] is self.kev)
        )


def match_hosts(
    session: Session,
    matcher: VulnMatcher | None,
    today: date,
    filters: Filters,
    scope: str | None = None,
) -> Iterator[HostMatch]:
    """Every host in `scope` (and the filters' agency / agent id), matched."""
    query = select(Host.agent_id, Host.hostname, Host.agency_id, Host.last_report_pk)
    if scope is not None:
        query = query.where(Host.agency_id == scope)
    if filters.agency is not None:
        query = query.where(Host.agency_id == filters.agency)
    if filters.agent_id is not None:
        query = query.where(Host.agent_id == filters.agent_id)
    hosts = list(session.execute(query.order_by(Host.agency_id, Host.hostname, Host.agent_id)))
    for start in range(0, len(hosts), 200):  # bounded memory: 200 hosts' packages at a time
        batch = hosts[start : start + 200]
        pks = [int(pk) for *_, pk in batch if pk is not None]
        facts = load_domains(session, pks, _DOMAINS)
        for row in batch:
            who = (str(row[0]), str(row[1]), str(row[2]))
            yield _match(matcher, today, filters, who, facts.get(row[3] or -1))


def _match(
    matcher: VulnMatcher | None,
    today: date,
    filters: Filters,
    who: tuple[str, str, str],  # agent id, hostname, agency
    facts: dict[str, Any] | None,
) -> HostMatch:
    agent_id, hostname, agency = who
    if matcher is None:
        return HostMatch(agent_id, hostname, agency, (), "no vulnerability matching configured")
    if facts is None:
        return HostMatch(agent_id, hostname, agency, (), "no report stored yet")
    domain, problem = matcher.match(facts, today)
    if domain is None:
        reason = problem.reason if problem else "not matched"
        return HostMatch(agent_id, hostname, agency, (), reason)
    items = tuple(item for item in domain["items"] if filters.keep(item))
    return HostMatch(agent_id, hostname, agency, items, None)
