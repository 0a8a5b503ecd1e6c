"""Collector: enrolment secrets, API tokens, policy state, facts by domain, host label and epoch.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrol_secrets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_enrol_secrets_agency_id_agencies"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrol_secrets"),
    )
    op.create_index("ix_enrol_secrets_agency_id", "enrol_secrets", ["agency_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.Column("last_used_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_table(
        "policy_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policy_state"),
    )
    op.create_table(
        "facts_blobs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.Column("superseded_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_facts_blobs_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_facts_blobs"),
        sa.UniqueConstraint(
            "host_id",
            "domain",
            "content_hash",
            name="uq_facts_blobs_host_id_domain_content_hash",
        ),
    )
    op.create_index("ix_facts_blobs_superseded_at", "facts_blobs", ["superseded_at"])

    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("label", sa.String(255), nullable=True))
        batch.add_column(sa.Column("seq_epoch", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_report_pk", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("facts_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("domain_blobs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("policy_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("evaluated_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("results_report_pk", sa.BigInteger(), nullable=True))
    _label_existing_hosts()
    with op.batch_alter_table("hosts") as batch:
        batch.alter_column("label", existing_type=sa.String(255), nullable=False)
        batch.create_unique_constraint("uq_hosts_agency_id_label", ["agency_id", "label"])

    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("domains", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("facts_digest", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("applied", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("evaluated", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_index("ix_reports_received_at", "reports", ["received_at"])


def _label_existing_hosts() -> None:
    """Give each existing host its stable label: hostname, or hostname/agent-id prefix."""
    bind = op.get_bind()
    hosts = sa.table(
        "hosts",
        sa.column("id", sa.Integer()),
        sa.column("agency_id", sa.String()),
        sa.column("agent_id", sa.String()),
        sa.column("hostname", sa.String()),
        sa.column("label", sa.String()),
    )
    taken: set[tuple[str, str]] = set()
    rows = bind.execute(
        sa.select(hosts.c.id, hosts.c.agency_id, hosts.c.agent_id, hosts.c.hostname).order_by(
            hosts.c.id
        )
    ).all()
    for host_id, agency_id, agent_id, hostname in rows:
        label = hostname
        if (agency_id, label) in taken:
            label = f"{hostname}/{agent_id[:8]}"
        if (agency_id, label) in taken:
            label = f"{hostname}/{agent_id}"
        taken.add((agency_id, label))
        bind.execute(sa.update(hosts).where(hosts.c.id == host_id).values(label=label))


def downgrade() -> None:
    op.drop_index("ix_reports_received_at", "reports")
    with op.batch_alter_table("reports") as batch:
        for column in ("evaluated", "applied", "facts_digest", "domains"):
            batch.drop_column(column)
    with op.batch_alter_table("hosts") as batch:
        batch.drop_constraint("uq_hosts_agency_id_label", type_="unique")
        for column in (
            "results_report_pk",
            "evaluated_at",
            "policy_fingerprint",
            "domain_blobs",
            "facts_digest",
            "last_report_pk",
            "seq_epoch",
            "label",
        ):
            batch.drop_column(column)
    op.drop_table("facts_blobs")
    op.drop_table("policy_state")
    op.drop_table("api_tokens")
    op.drop_table("enrol_secrets")
