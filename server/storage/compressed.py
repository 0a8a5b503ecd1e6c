"""Column types that store text compressed, read back transparently.

Facts blobs (a whole packages list is over 100 KB of JSON) and rule results' items
(every failing item's evidence and messages) are most of the database; zlib makes
them several times smaller. A value is stored as bytes: `MARKER` + zlib data when
compressing pays, else its UTF-8 as is (JSON text never starts with NUL, so the two
cannot be confused). Reading accepts what revision 0005 left: text on SQLite (its
rows are not rewritten) and uncompressed UTF-8 on PostgreSQL (converted in place).
Only this module knows; every reader selects the column and gets `str` (or, for
`CompressedJSON`, the parsed value), whichever way it was stored.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy import Dialect, LargeBinary, TypeDecorator

MARKER = b"\x00"
# Below this, zlib's header and checksum cost more than they save.
COMPRESS_FROM = 256
LEVEL = 6


def pack(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) < COMPRESS_FROM and not raw.startswith(MARKER):
        return raw
    return MARKER + zlib.compress(raw, LEVEL)


def unpack(value: bytes | memoryview | str) -> str:
    if isinstance(value, str):
        return value
    data = bytes(value)
    if data.startswith(MARKER):
        return zlib.decompress(data[1:]).decode("utf-8")
    return data.decode("utf-8")


class CompressedText(TypeDecorator[str]):
    """Text stored compressed (see the module docstring)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else unpack(value)


class CompressedJSON(TypeDecorator[Any]):
    """A JSON value stored as compressed UTF-8 JSON (never `\\u`-escaped)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return pack(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(unpack(value))
