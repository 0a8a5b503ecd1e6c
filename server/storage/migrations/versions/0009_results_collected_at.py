"""When the host's current findings were judged: `hosts.results_collected_at`.

Until 0008 every report of an unchanged host rewrote `last_seen` of each of its open
findings (a new row version per finding on PostgreSQL: 80 of 88 KiB per host per
day for a real host). Since 0009 an unchanged report writes no finding: a finding
that is still active and was seen at the host's current evaluation (its `last_seen`
at least `results_collected_at`) was seen again by every later report, so its last
sighting is the host's `last_collected_at`, computed when read
(`server.storage.findings.last_seen_of`).

Upgrade fills the column from the report that `results_report_pk` names. Downgrade
writes the implied sightings back into `findings.last_seen`, then drops the column,
so an older collector reads the same dates.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place on both databases: adding a nullable column needs no table copy.
    op.add_column(
        "hosts", sa.Column("results_collected_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE hosts SET results_collected_at = (SELECT reports.collected_at FROM reports"
        " WHERE reports.id = hosts.results_report_pk)"
        " WHERE results_report_pk IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE findings SET last_seen = (SELECT hosts.last_collected_at FROM hosts"
        " WHERE hosts.id = findings.host_id)"
        # The `.active` states of server.storage.models.FindingStatus.
        " WHERE status IN ('open', 'waived') AND EXISTS (SELECT 1 FROM hosts"
        " WHERE hosts.id = findings.host_id AND hosts.results_collected_at IS NOT NULL"
        " AND findings.last_seen >= hosts.results_collected_at"
        " AND hosts.last_collected_at > findings.last_seen)"
    )
    # SQLite 3.35+ and PostgreSQL drop a column in place.
    op.drop_column("hosts", "results_collected_at")
