"""The explicit registry of rule operators: an enum plus a dict, no import magic.

Each operator declares whether it takes a value and how to check that value when a
pack is loaded (so a bad regex or CIDR is a load error with a line number), and
compares a fact with the value at evaluation time. Comparing values of different
kinds raises `EvaluationError`: a type mismatch is an `error` result, never a
silent false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from rules.errors import EvaluationError
from rules.language.versions import compare_versions

MAX_REGEX_LENGTH = 512


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    MATCHES = "matches"
    NOT_MATCHES = "not_matches"
    EXISTS = "exists"
    ABSENT = "absent"
    DEFINED = "defined"
    VERSION_LT = "version_lt"
    VERSION_LE = "version_le"
    VERSION_GT = "version_gt"
    VERSION_GE = "version_ge"
    IN_CIDR = "in_cidr"
    NOT_IN_CIDR = "not_in_cidr"


def kind_of(value: Any) -> str:
    """The rule language's type of a JSON value (bool is not a number here)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    if value is None:
        return "null (unknown)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def mismatch(op: str, fact: Any, value: Any) -> EvaluationError:
    """The error for a fact and a value of kinds the operator cannot compare."""
    # A null fact means the agent could not learn the value; a rule that accepts
    # unknowns says so with an `exists` guard instead of getting a silent false.
    fact_text = _shown(fact) if fact is None else f"{kind_of(fact)} {_shown(fact)}"
    value_text = f"{kind_of(value)} {_shown(value)}"
    return EvaluationError(f"operator '{op}' cannot compare {fact_text} with {value_text}")


def _same_kind(op: str, fact: Any, value: Any) -> None:
    if type(fact) is type(value):  # the common case, without classifying both
        return
    if kind_of(fact) != kind_of(value):
        raise mismatch(op, fact, value)


def _equal(op: str, fact: Any, value: Any) -> bool:
    _same_kind(op, fact, value)
    return bool(fact == value)


def _ordered(op: str, fact: Any, value: Any) -> int:
    _same_kind(op, fact, value)
    if kind_of(fact) not in ("number", "string"):
        raise mismatch(op, fact, value)
    return int(fact > value) - int(fact < value)


def _member(op: str, fact: Any, options: Any) -> bool:
    if not isinstance(options, list | tuple):
        raise EvaluationError(f"operator '{op}' needs a list value, got {kind_of(options)}")
    if options:
        kind = kind_of(fact)
        # One option of the fact's kind is enough; stop at the first.
        if not any(kind_of(option) == kind for option in options):
            raise mismatch(op, fact, options[0])
    return fact in options


def _contains(op: str, fact: Any, value: Any) -> bool:
    if isinstance(fact, str):
        _same_kind(op, fact, value)
        return value in fact
    if isinstance(fact, list | tuple):  # facts read from YAML fixtures are frozen tuples
        if fact and all(kind_of(element) != kind_of(value) for element in fact):
            raise mismatch(op, fact[0], value)
        return value in fact
    raise mismatch(op, fact, value)


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise EvaluationError(f"regular expression longer than {MAX_REGEX_LENGTH} characters")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise EvaluationError(f"invalid regular expression {pattern!r}: {e}") from e


def _matches(op: str, fact: Any, pattern: Any) -> bool:
    if not isinstance(fact, str) or not isinstance(pattern, str):
        raise mismatch(op, fact, pattern)
    return compile_regex(pattern).search(fact) is not None


def _version(op: str, fact: Any, value: Any) -> int:
    if not isinstance(fact, str) or not isinstance(value, str):
        raise mismatch(op, fact, value)
    return compare_versions(fact, value)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: Any) -> list[Network]:
    candidates = value if isinstance(value, list | tuple) else [value]
    networks: list[Network] = []
    for candidate in candidates:
        if not isinstance(candidate, str):
            raise EvaluationError(f"CIDR must be a string, got {kind_of(candidate)}")
        try:
            networks.append(ipaddress.ip_network(candidate, strict=False))
        except ValueError as e:
            raise EvaluationError(f"invalid CIDR {candidate!r}: {e}") from e
    return networks


def _in_cidr(op: str, fact: Any, value: Any) -> bool:
    if not isinstance(fact, str):
        raise mismatch(op, fact, value)
    try:
        address = ipaddress.ip_address(fact.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError as e:
        raise EvaluationError(f"operator '{op}': {fact!r} is not an IP address") from e
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in parse_networks(value))


def _check_cidr(value: Any) -> None:
    parse_networks(value)


def _check_regex(value: Any) -> None:
    if not isinstance(value, str):
        raise EvaluationError("needs a regular expression (string)")
    compile_regex(value)


def _check_list(value: Any) -> None:
    if not isinstance(value, list | tuple):
        raise EvaluationError(f"needs a list value, got {kind_of(value)}")


def _check_string(value: Any) -> None:
    if not isinstance(value, str):
        raise EvaluationError(f"needs a string value, got {kind_of(value)}")


def _check_scalar(value: Any) -> None:
    if kind_of(value) not in ("number", "string", "boolean", "null"):
        raise EvaluationError(f"needs a scalar value, got {kind_of(value)}")


def _check_ordered(value: Any) -> None:
    if kind_of(value) not in ("number", "string"):
        raise EvaluationError(f"needs a number or string value, got {kind_of(value)}")


@dataclass(frozen=True)
class OperatorSpec:
    takes_value: bool
    check_value: Callable[[Any], None] | None
    apply: Callable[[Any, Any], bool]
    # exists/absent judge the path itself, so a missing path is an answer, not an error
    # (`defined` does not: a missing path is its one way to be wrong)
    accepts_missing: bool = False


def _spec(
    op: Operator,
    apply: Callable[[str, Any, Any], bool],
    check: Callable[[Any], None] | None,
) -> OperatorSpec:
    name = op.value  # bound once: the lambda runs for every item of every rule
    return OperatorSpec(True, check, lambda fact, value: apply(name, fact, value))


OPERATORS: dict[Operator, OperatorSpec] = {
    Operator.EQ: _spec(Operator.EQ, _equal, _check_scalar),
    Operator.NE: _spec(Operator.NE, lambda o, f, v: not _equal(o, f, v), _check_scalar),
    Operator.LT: _spec(Operator.LT, lambda o, f, v: _ordered(o, f, v) < 0, _check_ordered),
    Operator.LE: _spec(Operator.LE, lambda o, f, v: _ordered(o, f, v) <= 0, _check_ordered),
    Operator.GT: _spec(Operator.GT, lambda o, f, v: _ordered(o, f, v) > 0, _check_ordered),
    Operator.GE: _spec(Operator.GE, lambda o, f, v: _ordered(o, f, v) >= 0, _check_ordered),
    Operator.IN: _spec(Operator.IN, _member, _check_list),
    Operator.NOT_IN: _spec(Operator.NOT_IN, lambda o, f, v: not _member(o, f, v), _check_list),
    Operator.CONTAINS: _spec(Operator.CONTAINS, _contains, _check_scalar),
    Operator.NOT_CONTAINS: _spec(
        Operator.NOT_CONTAINS, lambda o, f, v: not _contains(o, f, v), _check_scalar
    ),
    Operator.MATCHES: _spec(Operator.MATCHES, _matches, _check_regex),
    Operator.NOT_MATCHES: _spec(
        Operator.NOT_MATCHES, lambda o, f, v: not _matches(o, f, v), _check_regex
    ),
    Operator.EXISTS: OperatorSpec(False, None, lambda fact, _v: fact is not None, True),
    Operator.ABSENT: OperatorSpec(False, None, lambda fact, _v: fact is None, True),
    # defined: the path is in the document (its collector ran), whatever its value,
    # null (unknown) included; a missing path stays an error. It replaces the idiom
    # `{op: in, value: [true, false, null]}` that guarded optional reads.
    Operator.DEFINED: OperatorSpec(False, None, lambda _fact, _v: True),
    Operator.VERSION_LT: _spec(
        Operator.VERSION_LT, lambda o, f, v: _version(o, f, v) < 0, _check_string
    ),
    Operator.VERSION_LE: _spec(
        Operator.VERSION_LE, lambda o, f, v: _version(o, f, v) <= 0, _check_string
    ),
    Operator.VERSION_GT: _spec(
        Operator.VERSION_GT, lambda o, f, v: _version(o, f, v) > 0, _check_string
    ),
    Operator.VERSION_GE: _spec(
        Operator.VERSION_GE, lambda o, f, v: _version(o, f, v) >= 0, _check_string
    ),
    Operator.IN_CIDR: _spec(Operator.IN_CIDR, _in_cidr, _check_cidr),
    Operator.NOT_IN_CIDR: _spec(
        Operator.NOT_IN_CIDR, lambda o, f, v: not _in_cidr(o, f, v), _check_cidr
    ),
}
