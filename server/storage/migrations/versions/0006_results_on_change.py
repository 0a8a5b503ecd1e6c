"""Rule results stored only when they change (`server.storage.rule_results`).

`rule_results` gains `host_id`, `until_pk` (the report a newer outcome replaced the
row at, exclusive; NULL while in effect), `digest` (of the outcome) and `position`
(the rule's place in the policy), with an index on (host_id, until_pk). Existing rows
stay valid for their own report only (`until_pk` = report_pk + 1), so every report
reads exactly what it read before; the first evaluation after the upgrade stores the
whole set again and the chain starts there. Downgrade copies the rows in effect into
every evaluated report that lacks its own, then drops the columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_rule_results_host_id_until_pk"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Nullable columns: added in place on both databases (no table copy).
    op.add_column("rule_results", sa.Column("host_id", _ID, nullable=True))
    op.add_column("rule_results", sa.Column("until_pk", _ID, nullable=True))
    op.add_column("rule_results", sa.Column("digest", sa.String(32), nullable=True))
    op.add_column("rule_results", sa.Column("position", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE rule_results SET until_pk = report_pk + 1, host_id = "
        "(SELECT reports.host_id FROM reports WHERE reports.id = rule_results.report_pk)"
    )
    op.create_index(_INDEX, "rule_results", ["host_id", "until_pk"])


def downgrade() -> None:
    # Before 0006 every evaluated report held its whole set: give it back the rows in
    # effect for it that were first stored at an earlier report.
    op.execute(
        "INSERT INTO rule_results (report_pk, rule_id, severity, status, items, errors) "
        "SELECT r.id, rr.rule_id, rr.severity, rr.status, rr.items, rr.errors "
        "FROM reports r JOIN rule_results rr ON rr.host_id = r.host_id "
        "AND rr.report_pk < r.id AND (rr.until_pk IS NULL OR rr.until_pk > r.id) "
        "WHERE r.evaluated AND r.applied "
        "ORDER BY r.id, rr.position, rr.id"
    )
    op.drop_index(_INDEX, table_name="rule_results")
    with op.batch_alter_table("rule_results") as batch:
        for column in ("position", "digest", "until_pk", "host_id"):
            batch.drop_column(column)
