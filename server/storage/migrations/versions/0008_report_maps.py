"""A report's envelope and domain map stored once per host while unchanged.

`reports` gains `map_blob_id`: the `facts_blobs` row (domain "@report") holding the
report's compact envelope and its domain -> blob id map, deduplicated per host like
a domain's content, so an unchanged host's report row holds neither. Existing rows
are not rewritten: `map_blob_id` NULL, they load from `facts` and `domains` as before.
Downgrade writes every map back into its reports' `facts` and `domains` and deletes
the map blobs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAP = "@report"  # server.storage.fact_store.MAP
_BATCH = 200


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    # In place on both databases (see `downgrade` on why not batch mode).
    op.add_column("reports", sa.Column("map_blob_id", id_type, nullable=True))


def _text(value: Any) -> str:
    # server.storage.compressed: NUL then zlib data, else UTF-8.
    if isinstance(value, str):
        return value
    data = bytes(value)
    return zlib.decompress(data[1:]).decode() if data[:1] == b"\x00" else data.decode()


def downgrade() -> None:
    bind = op.get_bind()
    reports = sa.table(
        "reports",
        sa.column("id"),
        sa.column("facts"),
        sa.column("domains", sa.JSON()),
        sa.column("map_blob_id"),
    )
    blobs = sa.table("facts_blobs", sa.column("id"), sa.column("domain"), sa.column("content"))
    last = 0
    while True:
        maps = bind.execute(
            sa.select(blobs.c.id, blobs.c.content)
            .where(blobs.c.id > last, blobs.c.domain == _MAP)
            .order_by(blobs.c.id)
            .limit(_BATCH)
        ).all()
        if not maps:
            break
        for blob_id, content in maps:
            value = json.loads(_text(content))
            envelope = json.dumps(
                value["envelope"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            bind.execute(
                sa.update(reports)
                .where(reports.c.map_blob_id == blob_id)
                .values(facts=envelope, domains=value["domains"])
            )
        last = maps[-1][0]
    bind.execute(sa.delete(blobs).where(blobs.c.domain == _MAP))
    # Not batch mode: on SQLite it would copy `reports` and drop the original, and
    # with foreign keys on, that drop deletes every rule result (ON DELETE CASCADE).
    # The column has no index or constraint, so SQLite (3.35+) drops it in place.
    op.execute("ALTER TABLE reports DROP COLUMN map_blob_id")
