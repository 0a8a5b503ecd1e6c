"""`specialise(op, value)` answers exactly as `OPERATORS[op].apply(fact, value)`.

The engine binds each operator to its value once per rule; these cases compare the
bound form with the general one over every operator and a grid of values and facts of
every JSON kind (including the values each operator rejects), answer for answer and
error message for error message.
"""

from __future__ import annotations

from typing import Any

import pytest

from rules.errors import EvaluationError
from rules.language.bound import specialise
from rules.language.operators import OPERATORS, Operator

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    2.5,
    "",
    "ssh",
    "1.2.3",
    "^ss",
    "(",
    "10.0.0.0/8",
    "::1/128",
    "not a cidr",
    [],
    ["ssh", "telnet"],
    [22, 23],
    [1, True],
    ["10.0.0.0/8", "192.168.0.0/16"],
    ["10.0.0.0/8", 5],
    [["a"], "a"],
    ("ssh",),
    {"a": 1},
]
FACTS: list[Any] = [
    *VALUES,
    "10.1.2.3",
    "192.168.1.1",
    "fe80::1%eth0",
    "::ffff:10.0.0.1",
    "1.2.10",
    ["ssh", 22],
    ("telnet", "ssh"),
]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "answer", call()
    except EvaluationError as e:
        return "error", str(e)
    except Exception as e:  # an engine bug in either form must be the same bug
        return type(e).__name__, str(e)


@pytest.mark.parametrize("op", list(Operator))
def test_the_bound_operator_answers_as_the_general_one(op: Operator) -> None:
    apply = OPERATORS[op].apply
    compared = 0
    for value in VALUES:
        bound = specialise(op, value)
        for fact in FACTS:
            expected = _outcome(lambda f=fact, v=value: apply(f, v))
            got = _outcome(lambda f=fact, b=bound: b(f))
            assert got == expected, f"{op.value} {value!r} on fact {fact!r}"
            compared += 1
    assert compared == len(VALUES) * len(FACTS)


def test_the_grid_reaches_answers_of_both_kinds_and_errors() -> None:
    # Otherwise the comparison above could agree on errors alone.
    outcomes = {
        _outcome(lambda f=fact, v=value: specialise(Operator.IN, v)(f))[0]
        for value in VALUES
        for fact in FACTS
    }
    assert outcomes == {"answer", "error"}
    answers = {specialise(Operator.EQ, "ssh")(fact) for fact in ("ssh", "telnet")}
    assert answers == {True, False}
