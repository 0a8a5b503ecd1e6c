"""The shapes of the read side's answers (pydantic), one model per JSON object.

`server.read.queries` builds these answers as plain dicts; the read API declares these
models as its response models, so the served OpenAPI document describes every answer
and FastAPI checks each one before it leaves (`extra="forbid"`: a key a query adds
without its model is a loud error in the tests, never a silently dropped field).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rules.language.model import OsFamily, Severity
from rules.results import Status
from server.storage.models import FindingStatus

Timestamp = Annotated[
    str,
    Field(
        description="RFC 3339, UTC (suffix Z)",
        json_schema_extra={"format": "date-time"},
    ),
]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


class View(BaseModel):
    """Base of the read models: exactly the keys the queries build."""

    model_config = ConfigDict(extra="forbid")


class FailingCounts(View):
    """Failing rules of a host, per severity."""

    critical: int
    high: int
    medium: int
    low: int
    info: int


class HostSummary(View):
    """A host and the state of its newest report."""

    agent_id: str
    agency: str
    hostname: str
    label: str = Field(description="the `host` label of its metrics")
    os: str | None
    agent_version: str
    last_seq: int
    seq_epoch: str | None
    last_collected_at: Timestamp
    last_received_at: Timestamp
    stale: bool = Field(description="no report within the configured stale_after_seconds")
    spool_dropped_reports: int = Field(
        description="reports its agent dropped from a full spool (collector unreachable"
        " longer than the spool holds), summed over the delivered reports; 0 when none"
    )
    score: Ratio | None = Field(description="null when no rule could be scored")
    passed: int
    failed: int
    errors: int
    failing: FailingCounts


class HostPage(View):
    items: list[HostSummary]
    total: int
    limit: int
    offset: int


class RuleResultView(View):
    """The result of one rule in the host's current results."""

    rule_id: str
    severity: Severity
    status: Status
    items: list[Any]
    errors: list[Any]
    fix: str | None = Field(
        description="a failing rule's fix command for the host's os_family; null when the"
        " rule has none for it, the family is unknown, or the rule does not fail"
    )


class FindingView(View):
    """One failing item of one rule on one host, over time."""

    agent_id: str
    host: str
    agency: str
    rule_id: str
    item_key: str = Field(description="the item's identity; empty for a rule-level finding")
    severity: Severity
    status: FindingStatus
    first_seen: Timestamp
    last_seen: Timestamp
    resolved_at: Timestamp | None
    reopened_count: int
    age_seconds: float = Field(description="first seen to resolved (or to last seen)")
    evidence: dict[str, Any]
    message: dict[str, str] = Field(description="the rule's message, by language (vi, en)")
    fixes: dict[OsFamily, str] = Field(
        description="the rule's fix command by OS family (host.os.family) in the collector's"
        " current rules; empty when it has none. The host's family: os_family of"
        " /hosts/{agent_id}"
    )


class FindingPage(View):
    items: list[FindingView]
    total: int
    limit: int
    offset: int


class ScorePoint(View):
    """The score of one applied report."""

    seq: int
    collected_at: Timestamp
    received_at: Timestamp
    score: Ratio | None


class HostFindingView(FindingView):
    """A finding in its host's detail, where the host's OS family is known."""

    fix: str | None = Field(
        description="the rule's fix command for this host's os_family; null when none"
    )


class HostDetail(HostSummary):
    """One host: its summary, latest facts, current results, findings, score history."""

    facts: dict[str, Any] | None = Field(description="the latest facts document")
    os_family: OsFamily | None = Field(
        description="host.os.family of the latest facts; null when they do not say or say"
        " 'other' (no fix command is given then)"
    )
    results: list[RuleResultView]
    findings: list[HostFindingView]
    score_history: list[ScorePoint]


class HostScore(View):
    agent_id: str
    agency: str
    label: str
    score: Ratio | None
    stale: bool
    score_history: list[ScorePoint]


class AgencyScore(View):
    """An agency's score, pooled over its hosts' current results, and its rank."""

    agency: str
    name: str
    hosts: int
    stale_hosts: int
    score: Ratio | None
    failing: int = Field(description="failing rules, summed over its hosts")
    open_findings: int
    rank: int = Field(description="among every agency, 1 is best (also for a scoped token)")
    ranked_agencies: int = Field(description="how many agencies the rank is among")


class AgencyRanking(View):
    items: list[AgencyScore]


class RequirementScore(View):
    """One requirement of a framework: the pooled score of the rules mapped to it."""

    requirement: str
    rules: list[str]
    levels: list[int] = Field(description="security levels it belongs to; empty: every level")
    applicable: bool = Field(
        description="false: every host has a known security level and none is one of "
        "the requirement's (not applicable: neither not met nor not assessed)"
    )
    hosts: int = Field(description="hosts judged by the requirement (by their level)")
    score: Ratio | None
    failing: int


class FrameworkScores(View):
    framework: str
    agency: str | None
    requirements: list[RequirementScore]


class AgencyRemediation(View):
    agency: str
    resolved: int
    median_hours: float | None
    mean_hours: float | None
    open: int
    oldest_open_hours: float | None


class RuleRemediation(View):
    rule: str
    resolved: int
    median_hours: float | None
    mean_hours: float | None
    open: int
    oldest_open_hours: float | None


class Remediation(View):
    """Time to remediate findings (first seen to resolved), by agency or by rule."""

    by: Literal["agency", "rule"]
    items: list[AgencyRemediation] | list[RuleRemediation]
