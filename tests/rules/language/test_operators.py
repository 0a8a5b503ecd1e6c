"""Each registered operator: its truth table and its type-mismatch errors."""

from __future__ import annotations

from typing import Any

import pytest

from rules.errors import EvaluationError
from rules.language.operators import OPERATORS, Operator


def apply(op: Operator, fact: Any, value: Any = None) -> bool:
    return OPERATORS[op].apply(fact, value)


@pytest.mark.parametrize(
    ("op", "fact", "value", "expected"),
    [
        (Operator.EQ, "tcp", "tcp", True),
        (Operator.EQ, 22, 22.0, True),
        (Operator.NE, "tcp", "udp", True),
        (Operator.LT, 1023, 1024, True),
        (Operator.LE, 1024, 1024, True),
        (Operator.GT, "b", "a", True),
        (Operator.GE, 10, 30, False),
        (Operator.IN, 23, [21, 23], True),
        (Operator.IN, 24, [], False),
        (Operator.NOT_IN, 24, [21, 23], True),
        (Operator.CONTAINS, ["aes128-cbc", "aes256-gcm"], "aes128-cbc", True),
        (Operator.CONTAINS, "OpenSSH_9.2", "SSH", True),
        (Operator.NOT_CONTAINS, ["a"], "b", True),
        (Operator.MATCHES, "TLSv1.1", r"^TLSv1(\.[01])?$", True),
        (Operator.NOT_MATCHES, "TLSv1.3", r"^TLSv1(\.[01])?$", True),
        (Operator.EXISTS, 0, None, True),
        (Operator.EXISTS, None, None, False),
        (Operator.ABSENT, None, None, True),
        (Operator.VERSION_LT, "1.0~rc1", "1.0", True),
        (Operator.VERSION_GE, "2:1.0", "1:9.9", True),
        (Operator.VERSION_LE, "1.0", "1.0", True),
        (Operator.VERSION_GT, "1.0", "1.0", False),
        (Operator.IN_CIDR, "10.1.2.3", ["10.0.0.0/8"], True),
        (Operator.IN_CIDR, "::ffff:127.0.0.1", "127.0.0.0/8", True),
        (Operator.IN_CIDR, "fe80::1%eth0", "fe80::/10", True),
        (Operator.NOT_IN_CIDR, "192.0.2.1", ["10.0.0.0/8", "fd00::/8"], True),
    ],
)
def test_truth_table(op: Operator, fact: Any, value: Any, expected: bool) -> None:
    assert apply(op, fact, value) is expected


@pytest.mark.parametrize(
    ("op", "fact", "value"),
    [
        (Operator.EQ, "22", 22),
        (Operator.EQ, True, 1),  # a boolean is not a number
        (Operator.NE, None, "no"),
        (Operator.LT, "10", 20),
        (Operator.GT, [1], [0]),
        (Operator.IN, "23", [21, 23]),
        (Operator.CONTAINS, 5, 5),
        (Operator.CONTAINS, ["a"], 1),
        (Operator.MATCHES, 5, "5"),
        (Operator.VERSION_LT, 1.0, "2"),
        (Operator.IN_CIDR, "not-an-ip", "10.0.0.0/8"),
        (Operator.IN_CIDR, 10, "10.0.0.0/8"),
    ],
)
def test_type_mismatch_is_an_error_not_false(op: Operator, fact: Any, value: Any) -> None:
    with pytest.raises(EvaluationError):
        apply(op, fact, value)


def test_every_operator_is_registered() -> None:
    assert set(OPERATORS) == set(Operator)


@pytest.mark.parametrize(
    ("op", "value"),
    [
        (Operator.IN, 23),
        (Operator.MATCHES, "([a-z"),
        (Operator.MATCHES, "a" * 600),
        (Operator.IN_CIDR, "10.0.0.0/33"),
        (Operator.VERSION_LT, 1),
        (Operator.EQ, [1, 2]),
        (Operator.LT, True),
    ],
)
def test_load_time_value_checks(op: Operator, value: Any) -> None:
    check = OPERATORS[op].check_value
    assert check is not None
    with pytest.raises(EvaluationError):
        check(value)
