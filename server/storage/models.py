"""The collector's tables (SQLAlchemy 2 typed declarative).

Migrations in `server/storage/migrations/versions` create exactly this schema; a test compares
the two. Every timestamp is timezone-aware UTC in Python (`UTCDateTime`), whatever the
database stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.storage.compressed import CompressedJSON, CompressedText

# Stable constraint names, so later migrations (and batch mode on SQLite) can refer
# to them by name on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Reports, results and findings grow without bound: 64-bit keys on PostgreSQL. SQLite
# only auto-increments an INTEGER PRIMARY KEY (already 64-bit there).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive datetimes are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no offset: what it returns was stored as UTC by the bind above.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FindingStatus(StrEnum):
    """Where a finding is in its lifecycle (see `server.storage.findings`).

    The one definition of the states: storage writes them, the read queries filter on
    them and the API documents them. Stored as the plain string value.
    """

    OPEN = "open"  # the item fails and no waiver covers it
    WAIVED = "waived"  # the item fails, covered by an active waiver; not counted open
    RESOLVED = "resolved"  # the item stopped failing (or its rule left the rule set)

    @property
    def active(self) -> bool:
        """Whether the item still fails (open or waived)."""
        return self is not FindingStatus.RESOLVED


class FindingStatusType(TypeDecorator[FindingStatus]):
    """A `FindingStatus` stored as its string value; read back as the enum member."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: FindingStatus | None, dialect: Dialect) -> str | None:
        # FindingStatus(value) also refuses a bare string that is not a state.
        return None if value is None else FindingStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> FindingStatus | None:
        return None if value is None else FindingStatus(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class EnrolSecret(Base):
    """An agency's enrolment secret (`cge_<id>_<secret>`); only its SHA-256 is stored.

    Rotating creates a new row and revokes the agency's previous ones.
    """

    __tablename__ = "enrol_secrets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """A token of a person or tool reading the API (`cga_<id>_<secret>`), with a role,
    optionally scoped to one agency."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # viewer | admin
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    # The one agency a viewer token may read; NULL = every agency (revision 0004).
    agency_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"))


class PolicyState(Base):
    """One row: the policy every host was last re-evaluated with, and who holds the lease.

    Replicas compare their loaded policy's fingerprint with this row; the one holding
    the lease re-evaluates the hosts whose `policy_fingerprint` differs.
    """

    __tablename__ = "policy_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]


class AgentToken(Base):
    """An agent's bearer token; only the SHA-256 of its secret is stored."""

    __tablename__ = "agent_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public token id
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256
    # Bound to the first agent that reports with the token; later reports must match.
    agent_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Host(Base):
    """One agent's machine and the state of its newest report (by seq within seq_epoch)."""

    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("agency_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128), unique=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("agent_tokens.id"))
    hostname: Mapped[str] = mapped_column(String(255))
    # The `host` label of its metrics: decided once, when the host is first seen.
    label: Mapped[str] = mapped_column(String(255))
    os_pretty_name: Mapped[str | None] = mapped_column(String(1024))
    agent_version: Mapped[str] = mapped_column(String(64))
    last_report_id: Mapped[str] = mapped_column(String(36))
    last_seq: Mapped[int] = mapped_column(BigInteger)
    seq_epoch: Mapped[str | None] = mapped_column(String(64))
    last_report_pk: Mapped[int | None] = mapped_column(BigInteger)
    last_collected_at: Mapped[datetime]
    last_received_at: Mapped[datetime]
    score_ratio: Mapped[float | None] = mapped_column(Float)
    passed_count: Mapped[int] = mapped_column(Integer)
    failed_count: Mapped[int] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer)
    # One column per severity (not JSON) so SQL and Grafana can sum and filter them.
    failing_critical: Mapped[int] = mapped_column(Integer)
    failing_high: Mapped[int] = mapped_column(Integer)
    failing_medium: Mapped[int] = mapped_column(Integer)
    failing_low: Mapped[int] = mapped_column(Integer)
    failing_info: Mapped[int] = mapped_column(Integer)
    # What the current state was computed from: skip re-evaluating unchanged facts.
    facts_digest: Mapped[str | None] = mapped_column(String(64))
    domain_blobs: Mapped[dict[str, Any] | None]  # domain -> [blob id, sha256, sent digest]
    policy_fingerprint: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime | None]
    results_report_pk: Mapped[int | None] = mapped_column(BigInteger)
    # The collected_at of that report (revision 0009): an active finding seen then was
    # seen by every later report too (`findings.last_seen_of`), so none is rewritten.
    results_collected_at: Mapped[datetime | None]
    # Posture read from the newest report's facts for the metrics (revision 0003);
    # NULL is "unknown" (domain absent or its collector failed), never zero.
    score_weight: Mapped[float | None] = mapped_column(Float)  # Σ weight of pass+fail+error
    updates_security: Mapped[int | None] = mapped_column(Integer)
    updates_other: Mapped[int | None] = mapped_column(Integer)
    update_oldest_pending_at: Mapped[datetime | None]
    reboot_required: Mapped[bool | None] = mapped_column(Boolean)
    cert_earliest_expiry_at: Mapped[datetime | None]
    exposed_services: Mapped[int | None] = mapped_column(Integer)
    # Reports the agent dropped from its full spool, summed over every report stored.
    spool_dropped_reports: Mapped[int | None] = mapped_column(BigInteger)


class Report(Base):
    """One accepted facts document: its envelope, and its domains by reference.

    `facts` holds the envelope (every key but the domains); `domains` maps each domain
    to a `facts_blobs` row, shared with the host's other reports while the domain's
    content does not change. Rows written before revision 0002 have `domains` NULL
    and the whole document in `facts`; since 0008 both are in the blob `map_blob_id`.
    Read them through `server.storage.fact_load` only.
    """

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_host_id_seq", "host_id", "seq"),
        Index("ix_reports_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36), unique=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    collected_at: Mapped[datetime]
    received_at: Mapped[datetime]
    agent_version: Mapped[str] = mapped_column(String(64))
    facts: Mapped[str] = mapped_column(Text)  # envelope JSON (whole document before 0002)
    domains: Mapped[dict[str, Any] | None]
    facts_digest: Mapped[str | None] = mapped_column(String(64))
    # Revision 0008: the `facts_blobs` row (domain `fact_store.MAP`) holding this
    # report's envelope and domain map, shared by the host's reports while both are
    # unchanged; `facts` is then empty and `domains` NULL. NULL on older rows.
    map_blob_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    evaluated: Mapped[bool] = mapped_column(Boolean, default=True)
    score_ratio: Mapped[float | None] = mapped_column(Float)


class FactsBlob(Base):
    """The content of one facts domain of one host, stored once while it does not change,
    or one part of a parted domain's list (`domain` is then `fact_parts.part_domain`)."""

    __tablename__ = "facts_blobs"
    __table_args__ = (UniqueConstraint("host_id", "domain", "content_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of `content`
    # canonical JSON of the domain's value, compressed (revision 0005)
    content: Mapped[str] = mapped_column(CompressedText())
    # Revision 0007: a parted domain's head (`fact_parts`) lists its parts' blob ids in
    # order (`content` is then the value with its list emptied); NULL for any other.
    parts: Mapped[list[Any] | None] = mapped_column(CompressedJSON())
    first_seen_at: Mapped[datetime]
    # NULL while it is the host's current content; retention deletes old superseded ones.
    superseded_at: Mapped[datetime | None] = mapped_column(index=True)


class RuleResultRow(Base):
    """The result of one rule on one host, from the report it was first produced at
    (`report_pk`) until a different outcome was stored (`until_pk`, exclusive; NULL
    while in effect). Revision 0006: an evaluation stores only the rules whose outcome
    (`digest`) changed; `server.storage.rule_results` writes and resolves them."""

    __tablename__ = "rule_results"
    __table_args__ = (Index("ix_rule_results_host_id_until_pk", "host_id", "until_pk"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_pk: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[Any]] = mapped_column(CompressedJSON())  # compressed (revision 0005)
    errors: Mapped[list[Any]]
    # Revision 0006 (NULL on rows written before it only where said).
    host_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    until_pk: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    digest: Mapped[str | None] = mapped_column(String(32))  # outcome digest; NULL before 0006
    position: Mapped[int | None] = mapped_column(Integer)  # rule's place in the policy


class Finding(Base):
    """One failing item of one rule on one host, over time (open / waived -> resolved ->
    reopened); `status` is a `FindingStatus`."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("host_id", "rule_id", "item_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(128))
    item_key: Mapped[str] = mapped_column(Text)  # at most ITEM_KEY_MAX chars (findings.py)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[FindingStatus] = mapped_column(FindingStatusType(), index=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    reopened_count: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[dict[str, Any]]
    message: Mapped[dict[str, Any]]
