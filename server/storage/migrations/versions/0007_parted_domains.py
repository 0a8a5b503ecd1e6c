"""Large domains stored in parts (`server.storage.fact_parts`).

`facts_blobs` gains `parts`: for a parted domain's head, the ordered ids of the
blobs holding its list's parts (compressed JSON, like `rule_results.items`); NULL
for every other blob. Existing blobs are not rewritten: they hold their whole value
and are read as before; the next change of a parted domain stores it in parts.
Downgrade joins every head's parts back into its content and deletes the parts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every domain server.storage.fact_parts.PARTED parts, with the path of its list
# (entries are only ever added there, and here too: a test compares the two).
_PARTED: dict[str, tuple[str, ...]] = {
    "packages": ("items",),
    "updates": ("pending",),
    "certificates": (),
    "listening": (),
}
_BATCH = 200


def upgrade() -> None:
    with op.batch_alter_table("facts_blobs") as batch:
        batch.add_column(sa.Column("parts", sa.LargeBinary(), nullable=True))


def _text(value: Any) -> str:
    # server.storage.compressed: NUL then zlib data, else UTF-8 (or text on SQLite).
    if isinstance(value, str):
        return value
    data = bytes(value)
    return zlib.decompress(data[1:]).decode() if data[:1] == b"\x00" else data.decode()


def _joined(domain: str, head: Any, parts: list[Any]) -> str:
    items = [item for part in parts for item in part]
    path = _PARTED[domain]
    if path:
        node = head
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = items
    value = head if path else items
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def downgrade() -> None:
    bind = op.get_bind()
    blobs = sa.table(
        "facts_blobs",
        sa.column("id"),
        sa.column("domain"),
        sa.column("content"),
        sa.column("parts"),
    )
    last = 0
    while True:
        heads = bind.execute(
            sa.select(blobs.c.id, blobs.c.domain, blobs.c.content, blobs.c.parts)
            .where(blobs.c.id > last, blobs.c.parts.is_not(None))
            .order_by(blobs.c.id)
            .limit(_BATCH)
        ).all()
        if not heads:
            break
        for blob_id, domain, content, parts in heads:
            ids = [int(part) for part in json.loads(_text(parts))]
            rows = bind.execute(sa.select(blobs.c.id, blobs.c.content).where(blobs.c.id.in_(ids)))
            found = {part_id: value for part_id, value in rows}
            text = _joined(
                domain, json.loads(_text(content)), [json.loads(_text(found[i])) for i in ids]
            )
            bind.execute(
                sa.update(blobs)
                .where(blobs.c.id == blob_id)
                .values(content=b"\x00" + zlib.compress(text.encode(), 6))
            )
        last = heads[-1][0]
    # Parts are the only blobs whose domain has a slash (fact_parts.part_domain).
    bind.execute(sa.delete(blobs).where(blobs.c.domain.like("%/%")))
    with op.batch_alter_table("facts_blobs") as batch:
        batch.drop_column("parts")
