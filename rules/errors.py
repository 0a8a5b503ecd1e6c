"""Exceptions of the rules layer; every one derives from `RulesError`."""

from __future__ import annotations

from dataclasses import dataclass


class RulesError(Exception):
    """Base of every error raised by the rules package."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a rule file, located for an editor (`file:line:col: message`).

    Lines and columns are 1-based, as editors and compilers print them.
    """

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    @classmethod
    def at(cls, source: str, message: str) -> Problem:
        """A problem at a model object's `file:line:col` source string."""
        file, line, column = source.rsplit(":", 2)
        return cls(file, int(line), int(column), message)


class RuleLoadError(RulesError):
    """One or more rule files are invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EvaluationError(RulesError):
    """A rule could not be judged against the facts (missing path, type mismatch...).

    The engine turns it into an `error` result: never a silent pass or fail.
    """
