"""The audit's detail: every finding and every host of an agency, as a stream.

An audit is an outline (`AuditReport` whose agencies' `findings` and `hosts` lists
are empty: counts, compliance, standings, sections) and a detail the renderers read
row by row. `StoredDetail` reads the rows from the database a page at a time while
the document is written, so a province's document holds one page of findings or
hosts, not all of them; `ModelDetail` reads them from a whole model's lists (the
JSON answer, and what the tests compare the streamed documents with).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from rules.language.model import OsFamily, RuleSet, Severity
from server.read.audit_findings import count_findings, stream_findings
from server.read.audit_hosts import host_row, load_families, load_host_facts
from server.read.audit_states import CHUNK, HostState, with_results
from server.read.audit_views import AgencyAudit, AuditFinding, AuditReport, HostRow
from server.storage.models import FindingStatus


class AuditDetail(Protocol):
    """What a renderer reads of an agency beyond the outline."""

    def findings(self, agency: str, severity: Severity | None = None) -> Iterator[AuditFinding]:
        """The findings at the cut-off, most severe first, then host, rule, item."""
        ...

    def finding_count(self, agency: str, severity: Severity | None = None) -> int:
        """How many `findings` yields (open and waived)."""
        ...

    def hosts(self, agency: str) -> Iterator[HostRow]:
        """The counted hosts, in label order."""
        ...

    def host_count(self, agency: str) -> int:
        """How many `hosts` yields."""
        ...

    def levels(self, agency: str) -> set[int | None]:
        """The security levels of the counted hosts (None: unknown)."""
        ...


class ModelDetail:
    """The detail held in a whole model's lists."""

    def __init__(self, report: AuditReport) -> None:
        self._agencies: dict[str, AgencyAudit] = {a.standing.agency: a for a in report.agencies}

    def findings(self, agency: str, severity: Severity | None = None) -> Iterator[AuditFinding]:
        return (
            f for f in self._agencies[agency].findings if severity is None or f.severity is severity
        )

    def finding_count(self, agency: str, severity: Severity | None = None) -> int:
        return sum(1 for _ in self.findings(agency, severity))

    def hosts(self, agency: str) -> Iterator[HostRow]:
        return iter(self._agencies[agency].hosts)

    def host_count(self, agency: str) -> int:
        return len(self._agencies[agency].hosts)

    def levels(self, agency: str) -> set[int | None]:
        return {h.security_level for h in self._agencies[agency].hosts}


class StoredDetail:
    """The detail read from the database while the document is written: the session
    must stay open until the renderer is done."""

    def __init__(
        self,
        session: Session,
        ruleset: RuleSet,
        weights: Mapping[Severity, float],
        *,
        cutoff: datetime,
        stale_after: timedelta,
        states: Mapping[str, Sequence[HostState]],
        levels: Mapping[int, int | None],
    ) -> None:
        self._session = session
        self._ruleset = ruleset
        self._weights = weights
        self._cutoff = cutoff
        self._stale_after = stale_after
        self._states = states
        self._levels = levels
        self._counts: dict[str, dict[tuple[Severity, FindingStatus], int]] = {}
        self._families: dict[str, dict[int, OsFamily | None]] = {}

    def findings(self, agency: str, severity: Severity | None = None) -> Iterator[AuditFinding]:
        families = self.families(agency)
        return stream_findings(
            self._session, self._ruleset, self._cutoff, agency, severity, families=families
        )

    def families(self, agency: str) -> dict[int, OsFamily | None]:
        """host id -> OS family of the agency's counted hosts, from the same reports as
        the rest of the audit; read once per agency (the findings are read once per
        severity, and twice for the printed summary), and not at all when no rule has
        a fix command. A finding's host without a report before the cut-off is not
        counted, so it has no family and no command."""
        if agency not in self._families:
            has_fix = any(rule.fix for rule in self._ruleset.rules)
            states = self._states.get(agency, ()) if has_fix else ()
            pairs = ((s.host_id, s.report_pk) for s in states)
            self._families[agency] = load_families(self._session, pairs)
        return self._families[agency]

    def counts(self, agency: str) -> dict[tuple[Severity, FindingStatus], int]:
        """(severity, open or waived) -> findings, counted by the database once."""
        if agency not in self._counts:
            self._counts[agency] = count_findings(self._session, self._cutoff, agency)
        return self._counts[agency]

    def finding_count(self, agency: str, severity: Severity | None = None) -> int:
        return sum(n for (s, _status), n in self.counts(agency).items() if severity in (None, s))

    def hosts(self, agency: str) -> Iterator[HostRow]:
        # Label order; ties in host id order (the states' order), as sorted() keeps it.
        ordered = sorted(self._states.get(agency, ()), key=lambda s: s.label)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            facts = load_host_facts(self._session, (s.report_pk for s in chunk))
            for state, results in with_results(self._session, chunk):
                collected_at, domains = facts[state.report_pk]
                yield host_row(
                    label=state.label,
                    agent_id=state.agent_id,
                    collected_at=collected_at,
                    facts=domains,
                    results=results,
                    weights=self._weights,
                    cutoff=self._cutoff,
                    stale_after=self._stale_after,
                    security_level=self._levels.get(state.host_id),
                )

    def host_count(self, agency: str) -> int:
        return len(self._states.get(agency, ()))

    def levels(self, agency: str) -> set[int | None]:
        return {self._levels.get(s.host_id) for s in self._states.get(agency, ())}


def materialize(outline: AuditReport, detail: AuditDetail) -> AuditReport:
    """The whole model: the outline with every finding and host in its lists."""
    return outline.model_copy(
        update={
            "agencies": [
                audit.model_copy(
                    update={
                        "findings": list(detail.findings(audit.standing.agency)),
                        "hosts": list(detail.hosts(audit.standing.agency)),
                    }
                )
                for audit in outline.agencies
            ]
        }
    )
