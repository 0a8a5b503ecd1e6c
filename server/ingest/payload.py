"""From request body bytes to a validated facts document, refusing anything else.

Each step bounds its cost before doing the work: the compressed size, then the
decompressed size (a gzip bomb stops at the cap, it is never inflated in full; gzip
members are counted and decoded in linear time), then a pre-scan of the decompressed
bytes that counts JSON values and containers BEFORE json.loads builds them (a small
body of millions of `[]` would otherwise cost a gigabyte of Python objects), then
the nesting depth and list lengths, then the schema. Top-level keys the schema does
not define are dropped, not stored. Every refusal is an `IngestError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from json.decoder import scanstring as _scanstring  # type: ignore[attr-defined]
from typing import Any

from rules.facts import SCHEMA_ID, load_schema
from server.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedEncodingError,
)
from server.ingest.inflate import JSON_STRING, check_counts, counts, gunzip_capped
from server.ingest.schema_check import DOMAINS, check_schema, envelope_valid, sent_digest
from server.ingest.unknown_keys import prune_unknown_keys

# Which domains of an agent's report need no validation, given its envelope and the
# digests of its domains as sent (see schema_check): the ingest service asks storage.
TrustedFor = Callable[[Mapping[str, Any], Mapping[str, str]], Collection[str]]
_WHITESPACE = re.compile(r"[ \t\n\r]*")

_IDENTITY = {"", "identity"}
_GZIP = {"gzip", "x-gzip"}
# A \u escape of a UTF-16 surrogate: json.loads leaves a lone one in the str, and such
# a str cannot be encoded to store it. Only documents with such an escape pay the check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A NUL character (only reachable as the escape \u0000: raw control characters are
# invalid JSON) cannot be stored in PostgreSQL text and means nothing in a fact.
_NUL_ESCAPE = re.compile(r"\\u0000")
# Before this, a report's time is a host clock reset (RTC battery, 1970, year 1), not
# a collection: applying it would date findings decades back.
EARLIEST_COLLECTED_AT = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_decompressed_bytes: int
    max_json_depth: int
    future_skew: timedelta
    max_list_items: int = 100_000
    # Counted on the bytes before parsing; a real report of a large host has a few
    # hundred thousand values. These bound the parse's peak memory (see bench/).
    max_json_values: int = 2_000_000
    max_json_containers: int = 300_000
    max_gzip_members: int = 16
    earliest_collected_at: datetime = EARLIEST_COLLECTED_AT


@dataclass(frozen=True)
class FactsDocument:
    """A valid `canhgac.facts/v1` document: its text as received and its parsed form."""

    text: str
    data: dict[str, Any]
    report_id: str
    agent_id: str
    seq: int
    collected_at: datetime
    agent_version: str
    seq_epoch: str | None = None
    dropped_keys: tuple[str, ...] = ()  # top-level keys the schema does not define
    # Keys the schema does not define inside its objects, dropped (`unknown_keys`),
    # and the paths of the first ones.
    dropped_nested: int = 0
    dropped_paths: tuple[str, ...] = ()
    # domain -> digest of its bytes as received (schema_check.sent_digest)
    sent: Mapping[str, str] = field(default_factory=dict)

    @property
    def hostname(self) -> str:
        host = self.data.get("host")
        # `host` is optional in v1 (its collector may have failed): fall back to the id.
        return str(host["hostname"]) if isinstance(host, dict) else self.agent_id

    @property
    def os_pretty_name(self) -> str | None:
        host = self.data.get("host")
        if not isinstance(host, dict):
            return None
        os_info = host["os"]
        pretty = os_info.get("pretty_name")
        return str(pretty) if pretty else str(os_info["name"])


def decode_document(
    body: bytes,
    content_encoding: str | None,
    limits: Limits,
    now: datetime,
    trusted_for: TrustedFor | None = None,
    *,
    expect_trusted: bool = True,
) -> FactsDocument:
    """Run every check on `body` in order; raise the first IngestError met.

    `expect_trusted` False (the agent's first report: nothing of it is stored yet):
    one parse with every hook, not a fast parse then a second one of what is not
    trusted; `trusted_for` is asked all the same."""
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLargeError(
            "body_too_large", f"the body exceeds {limits.max_body_bytes} bytes"
        )
    raw = decode_content(
        body,
        content_encoding,
        limits.max_decompressed_bytes,
        limits.max_gzip_members,
        (limits.max_json_values, limits.max_json_containers),
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequestError("invalid_utf8", f"the body is not valid UTF-8: {e.reason}") from e
    sent: dict[str, str] = {}
    trusted: frozenset[str] = frozenset()

    def trust(data: dict[str, Any], spans: Mapping[str, tuple[int, int]]) -> frozenset[str]:
        """Domains sent with the bytes of ones checked before: their shape (depth,
        list lengths) and schema are not checked again. Asked once the envelope is
        valid only (the question reads the host it names)."""
        nonlocal trusted
        sent.update(
            (k, sent_digest(text[start:end])) for k, (start, end) in spans.items() if k in DOMAINS
        )
        if trusted_for is not None and sent and envelope_valid(data):
            trusted = frozenset(trusted_for(data, sent))
        return trusted

    if trusted_for is not None and expect_trusted:
        data, _ = parse_json_spans(text, limits.max_json_depth, limits.max_list_items, trust)
    else:  # nothing can be trusted: one parse, with every check
        data, spans = parse_json_spans(text, limits.max_json_depth, limits.max_list_items)
        trust(data, spans)
    return validate_facts(
        text,
        data,
        limits.future_skew,
        now,
        limits.earliest_collected_at,
        sent=sent,
        trusted_for=None if trusted_for is None else lambda _envelope, _sent: trusted,
    )


def decode_content(
    body: bytes,
    content_encoding: str | None,
    max_bytes: int,
    max_members: int = 16,
    json_limits: tuple[int, int] | None = None,
) -> bytes | bytearray:
    """The body's bytes; `json_limits` (max_values, max_containers): refuse more JSON
    values or containers (a gzip body: counted while it is inflated)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY:
        if json_limits is not None:
            prescan_json(body, *json_limits)
        return body
    if encoding in _GZIP:
        return gunzip_capped(body, max_bytes, max_members, json_limits)
    raise UnsupportedEncodingError(
        "unsupported_encoding",
        f"Content-Encoding {content_encoding!r} is not supported (use gzip or none)",
    )


def prescan_json(raw: bytes, max_values: int, max_containers: int) -> None:
    """Refuse a body with too many JSON values or containers before it is parsed.

    Strings are cut out first (a comma or bracket inside one is text), then commas
    and opening brackets are counted: C-speed passes over bytes whose size is
    already capped, so the peak is one copy of the body, never its Python objects.
    A body that is not JSON gets past here and is refused by the parser. The exact
    count (strings cut out) runs only when the quick one, text included, is over.
    """
    containers, values = counts(raw)
    if containers <= max_containers and values <= max_values:
        return  # an upper bound (text counted too) already within the limits
    bare = JSON_STRING.sub(b"", raw)
    containers, values = counts(bare)
    del bare
    check_counts(containers, values, max_values, max_containers)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _NonFiniteError(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 parses as inf: it could not be stored as JSON again, nor compared.
        raise _NonFiniteError(f"number {text[:40]} is out of range")
    return value


class _Duplicated(dict[str, Any]):
    """An object that had a repeated key (the last value won, as json.loads does)."""

    duplicate: str = ""


def parse_json(text: str, max_depth: int, max_items: int = 100_000) -> dict[str, Any]:
    """Parse a JSON object no deeper than `max_depth`, with no array longer than
    `max_items`, no repeated object key and no number out of the float range."""
    return parse_json_spans(text, max_depth, max_items)[0]


def parse_json_spans(
    text: str,
    max_depth: int,
    max_items: int = 100_000,
    trusted: Callable[[dict[str, Any], Mapping[str, tuple[int, int]]], Collection[str]]
    | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """`parse_json`, and where each top-level value's text is: key -> (start, end).

    `trusted`, given the parsed object and the spans, names top-level values whose
    text passed these checks before: their depth and list lengths are not walked."""
    duplicates = 0

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        duplicates += 1
        marked = _Duplicated(result)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.duplicate = key
                break
            seen.add(key)
        return marked

    hooked = json.JSONDecoder(
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        object_pairs_hook=pairs_hook,
    )
    # With `trusted`, the values are parsed by the C decoder alone first (no Python
    # call per object); the ones not trusted are parsed again with the duplicate-key
    # hook. A trusted value's bytes were checked before: they repeat no key.
    decoder = (
        hooked
        if trusted is None
        else json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
    )
    spans: dict[str, tuple[int, int]] = {}
    with _parse_errors(max_depth):
        data = _top_level(decoder, text, spans, pairs_hook)
        if data is None:  # not an object: the whole parse says what it is
            data = hooked.decode(text)
    if not isinstance(data, dict):
        raise BadRequestError("not_an_object", "the body must be a JSON object")
    skip: Collection[str] = ()
    if trusted is not None:
        skip = trusted(data, spans)
        with _parse_errors(max_depth):
            for key, (start, _) in spans.items():
                if key not in skip and key in data:
                    data[key] = None  # the first parse's objects freed before the second
                    data[key] = hooked.raw_decode(text, start)[0]
    check_shape(data, max_depth, max_items, skip)
    if duplicates:
        path, key = _find_duplicate(data)
        raise BadRequestError(
            "duplicate_key",
            f"the JSON object at {path or 'the top level'} repeats key {key!r}",
            ".".join(p for p in (path, key) if p),
        )
    if _NUL_ESCAPE.search(text) and _contains_nul(data):
        raise BadRequestError("invalid_unicode", "the JSON contains a NUL character (\\u0000)")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadRequestError("invalid_unicode", "the JSON contains a lone surrogate") from e
    return data, spans


@contextmanager
def _parse_errors(max_depth: int) -> Iterator[None]:
    """The decoder's failures as the ingest's refusals."""
    try:
        yield
    except RecursionError as e:
        # The C parser recurses per level; far past max_depth it stops here, cleanly.
        raise BadRequestError("json_too_deep", f"JSON nesting exceeds {max_depth} levels") from e
    except _NonFiniteError as e:
        raise BadRequestError("number_out_of_range", f"the body has a {e}") from e
    except ValueError as e:
        raise BadRequestError("invalid_json", f"the body is not valid JSON: {e}") from e


def _skip_whitespace(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _top_level(
    decoder: json.JSONDecoder,
    text: str,
    spans: dict[str, tuple[int, int]],
    finish: Callable[[list[tuple[str, Any]]], dict[str, Any]],
) -> Any:
    """The top-level object parsed member by member (each value by the decoder, with
    its hooks), recording each value's span, its members made an object by `finish`;
    None when `text` is not an object."""
    ws = _skip_whitespace
    end = ws(text, 0)
    if text[end : end + 1] != "{":
        return None
    pairs: list[tuple[str, Any]] = []
    end = ws(text, end + 1)
    if text[end : end + 1] == "}":
        end += 1
    else:
        while True:
            if text[end : end + 1] != '"':
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, end
                )
            key, end = _scanstring(text, end + 1)
            end = ws(text, end)
            if text[end : end + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, end)
            start = ws(text, end + 1)
            value, end = decoder.raw_decode(text, start)
            spans[key] = (start, end)
            pairs.append((key, value))
            end = ws(text, end)
            delimiter = text[end : end + 1]
            end += 1
            if delimiter == "}":
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, end - 1)
            end = ws(text, end)
    if ws(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return finish(pairs)


def _contains_nul(data: Any) -> bool:
    """Whether any key or string holds NUL (the regex alone would also match "\\\\u0000")."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _find_duplicate(data: dict[str, Any]) -> tuple[str, str]:
    """(dotted path of the object, repeated key) of the first object that repeated one."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Duplicated):
            return path, node.duplicate
        if isinstance(node, dict):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()]
        else:
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        stack.extend(
            (child, p) for child, p in reversed(children) if isinstance(child, dict | list)
        )
    return "", ""


def check_shape(data: Any, max_depth: int, max_items: int, skip: Collection[str] = ()) -> None:
    """Refuse nesting deeper than `max_depth` and arrays longer than `max_items`.

    One pass over the containers only (the hot path: a 160 KiB report has thousands
    of objects); the path of a violation is found by a second walk, only then.
    `skip`: top-level keys of the object `data` whose values are not walked.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    if skip and type(data) is dict and max_depth >= 1:
        stack = [
            (child, 2)
            for key, child in data.items()
            if key not in skip and (type(child) is dict or type(child) is list)
        ]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise BadRequestError("json_too_deep", f"JSON nesting exceeds {max_depth} levels")
        if type(node) is list:
            if len(node) > max_items:
                path = _path_of(data, node)
                raise PayloadTooLargeError(
                    "list_too_long",
                    f"the list at {path or 'the top level'} has {len(node)} items;"
                    f" the limit is {max_items}",
                    path or None,
                )
            children = node
        else:
            children = node.values()
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth + 1))


def _path_of(data: Any, target: Any) -> str:
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        items = node.items() if isinstance(node, dict) else ((None, c) for c in node)
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, path if key is None else f"{path}.{key}" if path else key))
    return ""


def json_depth(value: Any, limit: int) -> int:
    """Container nesting depth of `value`, computed without recursion.

    Stops early once past `limit`: the caller only needs to know it is too deep.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def validate_facts(
    text: str,
    data: dict[str, Any],
    future_skew: timedelta,
    now: datetime,
    earliest: datetime = EARLIEST_COLLECTED_AT,
    *,
    sent: Mapping[str, str] | None = None,
    trusted_for: TrustedFor | None = None,
) -> FactsDocument:
    """The checked document. `trusted_for` (with `sent`, the digests of the domains
    as received) names domains validated before and skipped now (schema_check)."""
    schema = data.get("schema")
    if schema is None:
        raise UnprocessableError("schema_violation", "missing required field schema", "schema")
    if schema != SCHEMA_ID:
        raise UnprocessableError(
            "unsupported_schema",
            f"schema {schema!r} is not supported; this collector accepts {SCHEMA_ID}",
            "schema",
        )
    digests = sent or {}
    trusted = check_schema(
        data,
        None if trusted_for is None or not digests else lambda d: trusted_for(d, digests),
    )
    if type(data["seq"]) is not int:
        # JSON Schema's "integer" admits 5.0; a float seq would order reports wrongly.
        raise UnprocessableError("schema_violation", "seq must be an integer", "seq")
    collected_at = _parse_timestamp(data["collected_at"])
    if collected_at < earliest:
        raise UnprocessableError(
            "collected_at_too_old",
            f"collected_at {data['collected_at']} is before {earliest:%Y-%m-%d}:"
            " the host's clock is wrong",
            "collected_at",
        )
    if collected_at > now + future_skew:
        raise UnprocessableError(
            "collected_at_in_future",
            f"collected_at {data['collected_at']} is more than"
            f" {int(future_skew.total_seconds())} s ahead of the collector's clock",
            "collected_at",
        )
    known = _top_level_keys()
    dropped = tuple(sorted(k for k in data if k not in known))
    if dropped:
        # Unknown keys cost storage per report and no rule can read them.
        data = {k: v for k, v in data.items() if k in known}
    # The same inside the schema's objects, in the domains validated now.
    nested = prune_unknown_keys(data, trusted)
    return FactsDocument(
        text=text,
        data=data,
        report_id=data["report_id"],
        agent_id=data["agent_id"],
        seq=data["seq"],
        collected_at=collected_at,
        agent_version=data["agent_version"],
        seq_epoch=data.get("seq_epoch"),
        dropped_keys=dropped,
        dropped_nested=nested.count,
        dropped_paths=tuple(nested.paths),
        sent=digests,
    )


@cache
def _top_level_keys() -> frozenset[str]:
    return frozenset(load_schema()["properties"])


def _parse_timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise UnprocessableError(
            "schema_violation", f"collected_at {value!r} is not a valid time", "collected_at"
        ) from e
    return parsed.astimezone(UTC)
