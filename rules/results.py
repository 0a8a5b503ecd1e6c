"""Results of evaluating rules against one facts document (the `Result` contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rules.model import Localized, Severity


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    WAIVED = "waived"


@dataclass(frozen=True)
class ItemResult:
    """One violating element: its identity (`key`), the facts that show it, the message."""

    key: str
    evidence: dict[str, Any]
    message: Localized

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "evidence": self.evidence, "message": self.message.to_dict()}


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    severity: Severity
    status: Status
    title: Localized
    items: tuple[ItemResult, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "status": self.status.value,
            "title": self.title.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "errors": list(self.errors),
        }
