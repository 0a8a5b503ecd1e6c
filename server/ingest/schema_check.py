"""The facts schema, compiled once per process, checked per domain.

fastjsonschema turns the schema into Python source and execs it; that costs about a
quarter of a second, so `compile_validators` runs when the ingest service is built,
never on a request. Besides the whole-document validator there is one for the
envelope (the domains accepted as anything) and one per domain, so that a domain
whose bytes are exactly those of a domain this host sent, and that was validated,
before is not validated again: an unchanged packages list is most of a report's
validation time. `sent_digest` is that identity: SHA-256 of the schema text and of
the domain's bytes as received, so a collector with another schema trusts nothing
an older one validated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from functools import cache
from typing import Any

import fastjsonschema

from rules.facts import Domain, load_schema, schema_text
from server.errors import UnprocessableError

DOMAINS = frozenset(d.value for d in Domain)
Validator = Callable[[Any], Any]


@cache
def _schema_prefix() -> bytes:
    return hashlib.sha256(schema_text().encode()).digest()


def sent_digest(raw: str) -> str:
    """The identity of one domain's text as received, under this schema."""
    digest = hashlib.sha256(_schema_prefix())
    digest.update(raw.encode())
    return digest.hexdigest()


@cache
def _validators() -> tuple[Validator, Validator, dict[str, Validator]]:
    """(whole document, envelope only, one per domain). use_default=False: the
    document evaluated is exactly the document stored."""
    schema = load_schema()
    whole = fastjsonschema.compile(schema, use_default=False)
    envelope_schema = load_schema()
    properties = envelope_schema["properties"]
    per_domain: dict[str, Validator] = {}
    for name in sorted(DOMAINS & set(properties)):
        fresh = load_schema()  # compiling may rewrite its input: nothing shared
        part = {
            "$schema": fresh["$schema"],
            "$id": fresh["$id"],
            "$defs": fresh["$defs"],
            **fresh["properties"][name],
        }
        per_domain[name] = fastjsonschema.compile(part, use_default=False)
        properties[name] = {}
    envelope = fastjsonschema.compile(envelope_schema, use_default=False)
    return whole, envelope, per_domain


def compile_validators() -> None:
    """Compile every validator now (at start), not on the first request."""
    _validators()


def check_schema(
    data: Mapping[str, Any],
    trusted_for: Callable[[Mapping[str, Any]], Collection[str]] | None = None,
) -> Collection[str]:
    """Validate `data` against the schema; UnprocessableError on the first violation.

    `trusted_for`, given the envelope once it is valid, names the domains that need
    no validation (their bytes are those of a domain validated before); they are
    returned (none when the whole document was validated)."""
    whole, envelope, per_domain = _validators()
    if trusted_for is None:
        _run(whole, data, ())
        return ()
    _run(envelope, data, ())
    trusted = trusted_for(data)
    for name, value in data.items():
        validator = per_domain.get(name)
        if validator is not None and name not in trusted:
            _run(validator, value, (name,))
    return trusted


def envelope_valid(data: Mapping[str, Any]) -> bool:
    """Whether `data`'s envelope (every key but the domains) is valid; no error."""
    try:
        _validators()[1](data)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def _run(validator: Validator, value: Any, prefix: tuple[str, ...]) -> None:
    try:
        validator(value)
    except fastjsonschema.JsonSchemaValueException as e:
        field, message = describe(e, prefix)
        raise UnprocessableError("schema_violation", message, field) from e


def describe(error: Any, prefix: tuple[str, ...] = ()) -> tuple[str | None, str]:
    """(dotted field path, message) from a fastjsonschema error, without its `data`
    prefix; `prefix` is where the validated value sits in the document."""
    parts = [*prefix, *error.path[1:]]  # path[0] is fastjsonschema's name for the root
    if error.rule == "required" and isinstance(error.value, dict):
        missing = [key for key in error.rule_definition if key not in error.value]
        if missing:
            required = ".".join([*parts, missing[0]])
            return required, f"missing required field {required}"
    field = ".".join(parts) or None
    name = error.name or ""
    message: str = error.message
    detail = message[len(name) :].strip() if message.startswith(name) else message
    return field, f"{field or 'the document'} {detail}"
