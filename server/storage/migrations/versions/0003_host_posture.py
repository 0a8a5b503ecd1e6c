"""Host posture columns for the metrics: updates, reboot, certificates, exposure, spool.

Filled at ingest from the newest report's facts (`server.metrics.summary`); NULL means
"unknown" (the domain was absent or its collector failed), never zero.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
COLUMNS = (
    ("score_weight", sa.Float()),
    ("updates_security", sa.Integer()),
    ("updates_other", sa.Integer()),
    ("update_oldest_pending_at", UTC_TIME),
    ("reboot_required", sa.Boolean()),
    ("cert_earliest_expiry_at", UTC_TIME),
    ("exposed_services", sa.Integer()),
    ("spool_dropped_reports", sa.BigInteger()),
)


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
