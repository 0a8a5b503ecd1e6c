"""Facts blobs and rule results' items stored compressed (`server.storage.compressed`).

`facts_blobs.content` (text) and `rule_results.items` (JSON) become binary columns.
Existing rows are not compressed here: on PostgreSQL they are converted in place to
their UTF-8 bytes, on SQLite the table copy keeps their text; the column types read
both, and every new row is compressed. Downgrade decompresses every row back to text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("facts_blobs", "content", sa.Text()), ("rule_results", "items", sa.JSON()))
_BATCH = 500


def upgrade() -> None:
    for table, column, old_type in _COLUMNS:
        using = f"convert_to({column}::text, 'UTF8')"
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.LargeBinary(),
                existing_type=old_type,
                existing_nullable=False,
                postgresql_using=using,
            )


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    data = bytes(value)
    # The marker of server.storage.compressed: NUL, then zlib data.
    return zlib.decompress(data[1:]).decode() if data[:1] == b"\x00" else data.decode()


def downgrade() -> None:
    bind = op.get_bind()
    for table, column, old_type in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("plain_text", sa.Text(), nullable=True))
        rows_of = sa.table(table, sa.column("id"), sa.column(column), sa.column("plain_text"))
        last = 0
        while True:
            rows = bind.execute(
                sa.select(rows_of.c.id, rows_of.c[column])
                .where(rows_of.c.id > last)
                .order_by(rows_of.c.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            bind.execute(
                sa.update(rows_of)
                .where(rows_of.c.id == sa.bindparam("row_id"))
                .values(plain_text=sa.bindparam("text")),
                [{"row_id": row_id, "text": _plain(value)} for row_id, value in rows],
            )
            last = rows[-1][0]
        using = "plain_text::json" if isinstance(old_type, sa.JSON) else None
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
            batch.alter_column(
                "plain_text",
                new_column_name=column,
                type_=old_type,
                existing_type=sa.Text(),
                nullable=False,
                postgresql_using=using,
            )
