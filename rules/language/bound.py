"""Operators bound to one value, once per rule: the engine's hot path.

`specialise(op, value)` answers exactly as `OPERATORS[op].apply(fact, value)` (the same
bools, the same `EvaluationError` messages), with what depends on the value alone done
once: its kind, its compiled regex, its parsed networks. Values the general path
rejects keep the general path, so its errors are raised where and as they always were.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from rules.errors import EvaluationError
from rules.language.operators import (
    OPERATORS,
    Operator,
    compile_regex,
    kind_of,
    mismatch,
    parse_networks,
)

# The kind of each JSON type, looked up by exact type; other types go to `kind_of`.
_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    tuple: "list",
    dict: "object",
}

Test = Callable[[Any], bool]


def _kind(value: Any) -> str:
    return _KINDS.get(type(value)) or kind_of(value)


def _specialised_equal(name: str, value: Any, negate: bool) -> Test:
    value_type, value_kind = type(value), kind_of(value)

    def test(fact: Any) -> bool:
        # `_same_kind` then `==`, with the value's type and kind known in advance.
        if type(fact) is not value_type and _kind(fact) != value_kind:
            raise mismatch(name, fact, value)
        return bool(fact == value) is not negate

    return test


def _specialised_member(name: str, options: Any, negate: bool) -> Test | None:
    if not isinstance(options, list | tuple) or not options:
        return None  # the general path raises or answers as before
    kinds = frozenset(kind_of(option) for option in options)
    # A fact of exactly an option's JSON type has that option's kind: no need to ask.
    types = frozenset(type(option) for option in options if type(option) in _KINDS)
    first = options[0]

    def test(fact: Any) -> bool:
        # `_member`: one option of the fact's kind must exist (else the same mismatch
        # error naming the first option), then plain list membership.
        if type(fact) not in types and _kind(fact) not in kinds:
            raise mismatch(name, fact, first)
        return (fact in options) is not negate

    return test


def _specialised_matches(name: str, pattern: Any, negate: bool) -> Test | None:
    if not isinstance(pattern, str):
        return None
    try:
        regex = compile_regex(pattern)
    except EvaluationError:
        return None  # raised at evaluation, after the fact's kind is checked, as before
    search = regex.search

    def test(fact: Any) -> bool:
        if not isinstance(fact, str):
            raise mismatch(name, fact, pattern)
        return (search(fact) is not None) is not negate

    return test


def _specialised_cidr(name: str, value: Any, negate: bool) -> Test | None:
    try:
        networks = parse_networks(value)
    except EvaluationError:
        return None  # raised at evaluation, after the fact is checked, as before

    def test(fact: Any) -> bool:
        if not isinstance(fact, str):
            raise mismatch(name, fact, value)
        try:
            address = ipaddress.ip_address(fact.split("%", 1)[0])
        except ValueError as e:
            raise EvaluationError(f"operator '{name}': {fact!r} is not an IP address") from e
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        found = any(address.version == net.version and address in net for net in networks)
        return found is not negate

    return test


_ORDER_CHECKS: dict[str, Callable[[int], bool]] = {
    "lt": lambda order: order < 0,
    "le": lambda order: order <= 0,
    "gt": lambda order: order > 0,
    "ge": lambda order: order >= 0,
}


def _specialised_ordered(name: str, value: Any, _negate: bool) -> Test | None:
    value_type, value_kind = type(value), kind_of(value)
    if value_kind not in ("number", "string"):
        return None  # the general path raises its mismatch, as before
    check = _ORDER_CHECKS[name]

    def test(fact: Any) -> bool:
        # `_ordered`: a fact of the value's kind is a number or a string like it.
        if type(fact) is not value_type and _kind(fact) != value_kind:
            raise mismatch(name, fact, value)
        return check(int(fact > value) - int(fact < value))

    return test


_SPECIALISED: dict[Operator, Callable[[str, Any, bool], Test | None]] = {
    Operator.LT: _specialised_ordered,
    Operator.LE: _specialised_ordered,
    Operator.GT: _specialised_ordered,
    Operator.GE: _specialised_ordered,
    Operator.EQ: _specialised_equal,
    Operator.NE: _specialised_equal,
    Operator.IN: _specialised_member,
    Operator.NOT_IN: _specialised_member,
    Operator.MATCHES: _specialised_matches,
    Operator.NOT_MATCHES: _specialised_matches,
    Operator.IN_CIDR: _specialised_cidr,
    Operator.NOT_IN_CIDR: _specialised_cidr,
}
_NEGATED = {Operator.NE, Operator.NOT_IN, Operator.NOT_MATCHES, Operator.NOT_IN_CIDR}


def specialise(op: Operator, value: Any) -> Test:
    """`OPERATORS[op].apply` with `value` bound: the same answers and the same errors,
    with what depends on the value alone (its kind, a regex, networks) done once.
    The answer is always a bool (the engine relies on it)."""
    make = _SPECIALISED.get(op)
    test = make(op.value, value, op in _NEGATED) if make is not None else None
    if test is not None:
        return test
    apply = OPERATORS[op].apply
    return lambda fact: bool(apply(fact, value))
