"""The rule engine: a pure function from (rules, facts, params) to results.

No I/O, no clock, no globals that change a result: the agent's `check` and the
collector call the same `evaluate` and get the same answer. Two rules guard against
false comfort: a fact path that does not exist is an `error` (its collector failed or
is absent), never a pass; and comparing values of different kinds is an `error`,
never false. An exception that is not an `EvaluationError` is an engine bug, logged
with the rule id and its traceback (logger `canhgac.rules.engine`) besides becoming
the rule's `error`.

`compiler` turns each rule's expressions into closures once (paths split, operators
bound to their values, parameters resolved); `evaluation` runs them per document and
keeps the compiled form of each rule in a small cache.
"""

from rules.engine.evaluation import ParamOverrides, evaluate, evaluate_rule

__all__ = ["ParamOverrides", "evaluate", "evaluate_rule"]
