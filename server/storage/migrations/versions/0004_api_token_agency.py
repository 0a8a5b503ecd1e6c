"""API tokens optionally scoped to one agency: `api_tokens.agency_id` (NULL = the province).

An agency's own IT staff get a viewer token that reads only their agency's hosts,
findings, scores and audit. Existing tokens keep NULL, so they stay province-wide.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_api_tokens_agency_id_agencies"


def upgrade() -> None:
    # batch mode: SQLite cannot add a foreign key to an existing table in place.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("agency_id", sa.String(64), nullable=True))
        batch.create_foreign_key(FK_NAME, "agencies", ["agency_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(FK_NAME, type_="foreignkey")
        batch.drop_column("agency_id")
