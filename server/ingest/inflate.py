"""gzip bodies inflated in a small window: a body that inflates past the cap, or
into too many JSON values, is refused before its inflated bytes are ever held.

A first pass inflates `WINDOW` bytes at a time, keeping them only while the total
stays under `KEEP_BYTES` (2 MiB: nearly every real report), counting them (size, and the commas
and opening brackets that bound the number of JSON values and containers) and
dropping them past it. A body over the cap, or over the JSON counts once strings are
cut out (`json_counts`, streamed too), is refused with at most a few windows held.
A body past `KEEP_BYTES` and within every limit is inflated a second time into one
buffer of its now known size. Members are fed in slices, so `unused_data` after a
member is a copy of at most one slice (many members stay linear).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from server.errors import BadRequestError, PayloadTooLargeError

WINDOW = 256 * 1024  # the most one inflate step may produce
KEEP_BYTES = 2 * 1024 * 1024  # inflated bytes kept during the first pass (a large report)
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw zlib
_GZIP_SLICE = 64 * 1024
# One JSON string (escapes included), unrolled so the regex engine never backtracks.
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# The rest of a string begun in an earlier window, through its closing quote; and
# without it (the string goes on): what is left ends in a lone backslash or not.
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"')
_STRING_OPEN = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*')


def inflate(body: bytes, max_members: int) -> Iterator[bytes]:
    """The inflated bytes of gzip `body`, at most WINDOW at a time, in time linear in
    its size; several members (concatenated gzip files are valid gzip) up to
    `max_members`: an agent sends one, and thousands of empty ones are an attack."""
    view = memoryview(body)
    pos = 0
    members = 0
    decompressor: Any = None
    pending: bytes | memoryview = b""
    try:
        while True:
            if not pending and pos < len(view):
                pending = view[pos : pos + _GZIP_SLICE]
                pos += len(pending)
            if decompressor is None:
                if not pending:
                    break  # every member ended exactly at the end of the body
                members += 1
                if members > max_members:
                    raise PayloadTooLargeError(
                        "too_many_gzip_members",
                        f"the gzip body has more than {max_members} members",
                    )
                decompressor = zlib.decompressobj(_GZIP_WBITS)
            chunk = decompressor.decompress(pending, WINDOW)
            if chunk:
                yield chunk
            if decompressor.eof:
                pending = decompressor.unused_data  # at most one slice: linear
                decompressor = None
                continue
            pending = decompressor.unconsumed_tail
            if not pending and not chunk and pos >= len(view):
                break  # input exhausted and nothing more buffered: truncated
    except zlib.error as e:
        raise BadRequestError("invalid_gzip", f"the body is not valid gzip: {e}") from e
    if decompressor is not None or members == 0:
        raise BadRequestError("invalid_gzip", "the gzip body is truncated")


def counts(raw: bytes) -> tuple[int, int]:
    """(containers, values) counted on bytes: opening brackets, and those plus commas
    plus one. Text included, an upper bound; without strings, the JSON's counts."""
    containers = raw.count(b"{") + raw.count(b"[")
    return containers, containers + raw.count(b",") + 1


def json_counts(chunks: Iterable[bytes]) -> tuple[int, int]:
    """`counts` of the JSON text `chunks` with its strings cut out, as
    `counts(JSON_STRING.sub(b"", text))` gives for the text whole, window by window
    (a string may begin in one window and end in a later one)."""
    containers = commas = 0
    in_string = escaped = False
    for chunk in chunks:
        start = 0
        if in_string:
            if escaped:  # the window before ended inside an escape: skip its second byte
                start, escaped = 1, False
            closed = _STRING_REST.match(chunk, start)
            if closed is None:
                rest = _STRING_OPEN.match(chunk, start)
                escaped = rest is not None and rest.end() == len(chunk) - 1
                continue  # the whole window is inside the string
            start, in_string = closed.end(), False
        bare = JSON_STRING.sub(b"", chunk[start:])
        # What is left of a string is one that goes on into the next window.
        quote = bare.find(b'"')
        outside = bare if quote < 0 else bare[:quote]
        containers += outside.count(b"{") + outside.count(b"[")
        commas += outside.count(b",")
        if quote >= 0:
            in_string = True
            tail = bare[quote + 1 :]
            rest = _STRING_OPEN.match(tail)
            escaped = rest is not None and rest.end() == len(tail) - 1
    return containers, containers + commas + 1


def check_counts(containers: int, values: int, max_values: int, max_containers: int) -> None:
    if containers > max_containers:
        raise PayloadTooLargeError(
            "too_many_json_containers",
            f"the JSON has about {containers} objects and arrays; the limit is {max_containers}",
        )
    if values > max_values:
        raise PayloadTooLargeError(
            "too_many_json_values",
            f"the JSON has about {values} values; the limit is {max_values}",
        )


def gunzip_capped(
    body: bytes,
    max_bytes: int,
    max_members: int = 16,
    json_limits: tuple[int, int] | None = None,
) -> bytes | bytearray:
    """Inflate gzip `body`; refused past `max_bytes`, or with more JSON values or
    containers than `json_limits` (max_values, max_containers), with at most a few
    windows of it inflated at a time."""
    kept: list[bytes] | None = []
    size = containers = commas = 0
    for chunk in inflate(body, max_members):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(
                "decompressed_too_large", f"the decompressed body exceeds {max_bytes} bytes"
            )
        if kept is not None:
            kept.append(chunk)
            if size > KEEP_BYTES:
                kept = None  # inflated again at the end, once every limit held
        if json_limits is not None:
            containers += chunk.count(b"{") + chunk.count(b"[")
            commas += chunk.count(b",")
    if json_limits is not None:
        max_values, max_containers = json_limits
        if containers > max_containers or containers + commas + 1 > max_values:
            # Over with text counted: count again without the strings, streamed.
            exact = json_counts(inflate(body, max_members))
            check_counts(*exact, max_values, max_containers)
    if kept is not None:
        return b"".join(kept)
    out = bytearray(size)
    at = 0
    for chunk in inflate(body, max_members):
        out[at : at + len(chunk)] = chunk
        at += len(chunk)
    return out  # a bytearray: bytes(out) would hold the body twice
