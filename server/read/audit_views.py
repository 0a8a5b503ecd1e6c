"""The audit model's shapes (pydantic, frozen): what `server.read.audit` builds, the
renderers read and the API serves as JSON (schema `canhgac.audit/v1`).

Frozen: the model is a value, not a working set; `extra="forbid"`, so a field a
builder adds without its model is a loud error.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rules.language.model import Severity
from rules.policy.scoring import RequirementStatus
from server.storage.models import FindingStatus

AUDIT_SCHEMA: Literal["canhgac.audit/v1"] = "canhgac.audit/v1"
SEVERITIES = tuple(sorted(Severity, key=lambda s: -s.rank))  # critical first


class AuditView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(AuditView):
    """A text a user reads, in both languages."""

    vi: str
    en: str


class SeverityCounts(AuditView):
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0


class TrendPoint(AuditView):
    at: datetime
    score: float | None


class AgencyStanding(AuditView):
    """An agency's pooled score at the cut-off, a period earlier, and its rank."""

    agency: str
    name: str
    rank: int = Field(description="1 is best; unknown scores rank last")
    score: float | None = Field(description="null: no rule could be scored")
    previous_score: float | None
    change: float | None = Field(description="score - previous_score; null if either is")
    trend: list[TrendPoint] = Field(description="from previous_as_of to as_of, evenly spaced")
    hosts: int = Field(description="hosts with an evaluated report before the cut-off")
    stale_hosts: int


class UrgentAction(AuditView):
    """One rule to fix, with how many hosts it affects (open findings only)."""

    rule_id: str
    title: Text
    severity: Severity
    hosts: int
    findings: int
    oldest_first_seen: datetime
    remediation: Text


class RequirementRow(AuditView):
    requirement: str
    group: str
    title: Text
    confidence: str = Field(description="verified | unverified: the mapping's own confidence")
    levels: list[int] = Field(
        default_factory=list, description="security levels it belongs to; empty: every level"
    )
    status: RequirementStatus = Field(
        description="pooled over the hosts of its levels; not_applicable when the agency "
        "has hosts but none at its levels (or every mapped rule is not applicable)"
    )
    rules: list[str]
    failing_hosts: list[str] = Field(description="hosts whose result fails a mapped rule")


class FrameworkCompliance(AuditView):
    framework: str
    version: str
    title: Text
    confidence: str
    met: int
    not_met: int
    not_assessed: int
    not_applicable: int = Field(0, description="requirements above (or beside) the levels")
    other: int = Field(description="error or waived")
    requirements: list[RequirementRow]


class AuditFinding(AuditView):
    """One item failing at the cut-off."""

    agency: str
    host: str
    agent_id: str
    rule_id: str
    title: Text
    severity: Severity
    status: FindingStatus = Field(description="open or waived (an approved exception)")
    item_key: str
    evidence: dict[str, Any]
    message: Text
    remediation: Text
    fix: str | None = Field(
        default=None,
        description="the rule's fix command for the host's OS family (host.os.family "
        "of its report at the cut-off); null when the rule has none for that family or "
        "the family is unknown or other",
    )
    first_seen: datetime
    age_days: float = Field(description="cut-off minus first seen")


class Remediation(AuditView):
    """Time to remediate: findings resolved in the period, and what is still open."""

    resolved: int = Field(description="resolved between previous_as_of and as_of")
    median_days: float | None = Field(description="first seen to resolved, median")
    open: int
    oldest_open_days: float | None


class WaiverRow(AuditView):
    """A configured waiver (approved exception) that can apply to the agency."""

    id: str
    rule_id: str
    item: str | None
    host: str | None
    justification: str
    approved_by: str | None
    expires: date
    in_force: bool = Field(description="not expired on the cut-off day")


class CertificateRow(AuditView):
    """A certificate that expires within the report's horizon of the cut-off."""

    location: str
    subject: str
    not_after: datetime
    days_left: int = Field(description="whole days from the cut-off to not_after")


class ServiceRow(AuditView):
    """A listening socket reachable from the network (not loopback)."""

    protocol: str
    address: str
    port: int
    process: str | None


class UnreadKind(StrEnum):
    """Why a facts domain could not be read (the agent's `errors` kinds, and absent)."""

    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMISSION = "permission"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"
    ABSENT = "absent"  # neither values nor an error entry: not in the report


class Unread(AuditView):
    domain: str
    kind: UnreadKind
    reason: str = Field(description="the agent's own words (system text, often English)")


class HostRow(AuditView):
    """One host as of its newest report before the cut-off."""

    host: str
    agent_id: str
    collected_at: datetime
    stale: bool
    score: float | None
    security_level: int | None = Field(
        None, description="cấp độ 1-5 from the scopes' security-level-<N> groups; null: unknown"
    )
    security_updates: int | None = Field(description="null: the updates could not be read")
    oldest_security_update: datetime | None = Field(description="first seen pending")
    reboot_required: bool | None
    certificates: list[CertificateRow]
    exposed_services: list[ServiceRow]
    unread: list[Unread] = Field(description="facts domains that could not be read, and why")


class ExclusionReason(StrEnum):
    # Reported before the cut-off, but no report of then has stored results (their
    # evaluation was skipped or its results were deleted). Hosts first seen after the
    # cut-off did not exist then: they are not listed (the document stays the same).
    NOT_EVALUATED = "not_evaluated"


class ExcludedHost(AuditView):
    """A host the collector knows but the audit could not count, and why."""

    host: str
    agent_id: str
    reason: ExclusionReason


class LanPortRow(AuditView):
    """An open port of a LAN device, as the discovering agents found it."""

    port: int
    protocol: str
    service: str = Field(description="the agent's guess from the port number, never a banner")
    risky_rule: str | None = Field(
        description="the lan-discovery rule that judges this port (a risky service); null: none"
    )


class LanDeviceRow(AuditView):
    """An unmanaged device: neither its MAC nor its IP is an enrolled host's."""

    ips: list[str]
    mac: str | None = Field(description="null when no agent learnt it (TCP connect off-link)")
    vendor: str = Field(description="from the agent's OUI table; empty when unknown")
    ports: list[LanPortRow]
    first_seen: datetime
    last_seen: datetime
    seen_by: list[str] = Field(description="labels of the hosts whose sweep found it")


class LanSection(AuditView):
    """The agency's LAN at the cut-off, from the same reports as the rest of the audit.

    Not assessed (no host's report carried a `discovery` domain): the counts are null,
    never zero."""

    assessed: bool
    sweeping_hosts: list[str] = Field(description="labels of the hosts whose report swept")
    failed_sweeps: list[str] = Field(
        description="labels of the hosts whose sweep failed (an `errors` entry for discovery)"
    )
    devices: int | None
    managed: int | None
    unmanaged: int | None
    risky_unmanaged: int | None = Field(description="unmanaged devices with a risky open port")
    unmanaged_devices: list[LanDeviceRow] = Field(description="IPv4 order")


class VulnStatus(StrEnum):
    """Whether the agency's known vulnerabilities could be told."""

    ASSESSED = "assessed"  # at least one host was matched
    NO_STORE = "no_store"  # no feed imported, or the store is unreadable
    STALE = "stale"  # the feeds covering the hosts are older than the configured age
    NOT_MATCHED = "not_matched"  # no host could be matched (release not covered...)


class VulnHostProblem(StrEnum):
    STALE = "stale"
    UNSUPPORTED = "unsupported"  # no imported feed covers the host's release
    NO_FACTS = "no_facts"  # its report lacks the host or packages facts


class VulnFeedRow(AuditView):
    name: str
    generated_at: datetime
    age_days: int = Field(description="at the audit's day")
    stale: bool


class VulnUnmatched(AuditView):
    host: str
    problem: VulnHostProblem


class VulnCountRow(AuditView):
    """Items (host, CVE, source package) of one vendor severity, by state."""

    severity: str
    fix_available: int
    fix_pending: int
    affected_no_fix: int
    will_not_fix: int
    end_of_life: int
    total: int


class VulnHostRow(AuditView):
    host: str
    fix_available: int
    critical_high: int = Field(description="of which critical or high")
    kev: int = Field(description="of which known exploited (CISA KEV)")


class VulnItemRow(AuditView):
    """One (CVE, source package, versions, state) and the hosts it is open on."""

    cve: str
    package: str
    installed_version: str
    fixed_version: str | None
    severity: str
    state: str
    kev: bool
    epss: float | None
    hosts: list[str]
    fix_since: date | None = Field(description="when this collector first saw the fix")


class VulnSection(AuditView):
    """Known vulnerabilities of the packages in the same reports as the rest of the
    audit, matched against the CURRENT feed store (not the one of the cut-off day).
    Not assessed or stale: the counts are null, never zero."""

    status: VulnStatus
    max_age_days: float | None
    feeds: list[VulnFeedRow]
    matched_hosts: list[str]
    unmatched_hosts: list[VulnUnmatched]
    counts: list[VulnCountRow] | None = Field(description="vendor severity order")
    items: int | None = Field(description="(host, CVE, source package) items")
    kev_items: int | None
    top_hosts: list[VulnHostRow] = Field(description="most fix-available items first")
    urgent: list[VulnItemRow] = Field(
        description="KEV items, and critical/high items with a fix available"
    )


class AgencyAudit(AuditView):
    standing: AgencyStanding
    severity_counts: SeverityCounts = Field(description="open findings by severity")
    waived_findings: int
    remediation: Remediation
    waivers: list[WaiverRow]
    hosts: list[HostRow]
    excluded_hosts: list[ExcludedHost]
    urgent_actions: list[UrgentAction]
    frameworks: list[FrameworkCompliance]
    findings: list[AuditFinding]
    lan: LanSection = Field(description="unmanaged devices on the agency's LAN")
    vulnerabilities: VulnSection = Field(description="known vulnerabilities of packages")


class PackVersion(AuditView):
    id: str
    version: str


class AuditReport(AuditView):
    """The whole audit package: one agency, or every agency (`scope` province)."""

    schema_: Literal["canhgac.audit/v1"] = Field(AUDIT_SCHEMA, alias="schema")
    scope: Literal["agency", "province"]
    as_of: datetime = Field(description="the cut-off: observations strictly before it")
    previous_as_of: datetime
    policy_fingerprint: str
    packs: list[PackVersion]
    weights: dict[str, float]
    stale_after_seconds: int
    ranking: list[AgencyStanding] = Field(
        description="every agency, best first (an agency-scoped token: its own only)"
    )
    ranked_agencies: int = Field(description="how many agencies the ranks are among")
    agencies: list[AgencyAudit]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
