"""Results of evaluating rules against one facts document (the `Result` contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rules.language.model import Localized, Severity


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
    waiver: str | None = None  # id of the waiver that covers this item

    def to_dict(self) -> dict[str, Any]:
        data = {"key": self.key, "evidence": self.evidence, "message": self.message.to_dict()}
        if self.waiver is not None:
            data["waiver"] = self.waiver
        return data


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    severity: Severity
    status: Status
    title: Localized
    items: tuple[ItemResult, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)
    waiver: Mapping[str, Any] | None = None  # the waiver, when status is `waived`

    def to_dict(self) -> dict[str, Any]:
        data = {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "status": self.status.value,
            "title": self.title.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "errors": list(self.errors),
        }
        if self.waiver is not None:
            data["waiver"] = dict(self.waiver)
        return data
