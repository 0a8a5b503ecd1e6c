"""Initial schema: agencies, agent tokens, hosts, reports, rule results, findings.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Mirrors server.storage.models.BigId: 64-bit on PostgreSQL, INTEGER PRIMARY KEY on SQLite.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agencies"),
    )
    op.create_table(
        "agent_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.Column("last_used_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_agent_tokens_agency_id_agencies"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agent_tokens"),
    )
    op.create_index("ix_agent_tokens_agency_id", "agent_tokens", ["agency_id"])
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("os_pretty_name", sa.String(1024), nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("last_report_id", sa.String(36), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_collected_at", UTC_TIME, nullable=False),
        sa.Column("last_received_at", UTC_TIME, nullable=False),
        sa.Column("score_ratio", sa.Float(), nullable=True),
        sa.Column("passed_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("failing_critical", sa.Integer(), nullable=False),
        sa.Column("failing_high", sa.Integer(), nullable=False),
        sa.Column("failing_medium", sa.Integer(), nullable=False),
        sa.Column("failing_low", sa.Integer(), nullable=False),
        sa.Column("failing_info", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name="fk_hosts_agency_id_agencies"),
        sa.ForeignKeyConstraint(
            ["token_id"], ["agent_tokens.id"], name="fk_hosts_token_id_agent_tokens"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_hosts"),
        sa.UniqueConstraint("agent_id", name="uq_hosts_agent_id"),
    )
    op.create_index("ix_hosts_agency_id", "hosts", ["agency_id"])
    op.create_table(
        "reports",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("collected_at", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("score_ratio", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_reports_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("report_id", name="uq_reports_report_id"),
    )
    op.create_index("ix_reports_host_id_seq", "reports", ["host_id", "seq"])
    op.create_table(
        "rule_results",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("report_pk", BIG_ID, nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_pk"],
            ["reports.id"],
            name="fk_rule_results_report_pk_reports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rule_results"),
    )
    op.create_index("ix_rule_results_report_pk", "rule_results", ["report_pk"])
    op.create_table(
        "findings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("item_key", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.Column("reopened_count", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_findings_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.UniqueConstraint(
            "host_id", "rule_id", "item_key", name="uq_findings_host_id_rule_id_item_key"
        ),
    )
    op.create_index("ix_findings_status", "findings", ["status"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("rule_results")
    op.drop_table("reports")
    op.drop_table("hosts")
    op.drop_table("agent_tokens")
    op.drop_table("agencies")
