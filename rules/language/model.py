"""Typed model of rule packs: severities, bilingual texts, expressions and rules.

The loader builds these from YAML; the engine only ever sees these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Union

from rules.language.operators import Operator


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Larger is more severe; used for `--fail-on` thresholds and sorting."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}

LANGUAGES = ("vi", "en")


class OsFamily(StrEnum):
    """The package families a rule's `fix` may name: `host.os.family` as the agent
    reports it (facts-v1 schema, derived from os-release `ID` and `ID_LIKE`, so Ubuntu
    is `debian` and Rocky or AlmaLinux are `rhel`), without `other`."""

    DEBIAN = "debian"
    RHEL = "rhel"
    SUSE = "suse"
    ARCH = "arch"
    ALPINE = "alpine"


_FAMILIES = {family.value: family for family in OsFamily}


def os_family(host: Any) -> OsFamily | None:
    """The family of a `host` facts domain (`host.os.family`); None when the facts do
    not say or say `other`, so no fix command is shown rather than a wrong one."""
    os_facts = host.get("os") if isinstance(host, Mapping) else None
    family = os_facts.get("family") if isinstance(os_facts, Mapping) else None
    return _FAMILIES.get(family) if isinstance(family, str) else None


@dataclass(frozen=True)
class Localized:
    """A text a user reads, in Vietnamese and English."""

    vi: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi

    def to_dict(self) -> dict[str, str]:
        return {"vi": self.vi, "en": self.en}


@dataclass(frozen=True)
class ParamRef:
    """`{param: name}` inside a rule: replaced by the rule's (possibly overridden) parameter."""

    name: str


@dataclass(frozen=True)
class Leaf:
    """`{path, op, value}`: compare the fact at `path` with `value` using `op`."""

    path: str
    op: Operator
    value: Any = None  # a literal, a ParamRef, or None for unary operators


@dataclass(frozen=True)
class AllOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


class Quantifier(StrEnum):
    FOR_ALL = "for_all"
    FOR_ANY = "for_any"
    FOR_NONE = "for_none"


@dataclass(frozen=True)
class Quantified:
    """`for_all | for_any | for_none` over the list at `source`.

    Inside `where` and `assertion`, paths are relative to the item; `$.x` reaches the
    document root. `key` is a template naming each item (one finding per item key).
    """

    quantifier: Quantifier
    source: str
    key: str
    assertion: Expr
    where: Expr | None = None


Expr = Union[Leaf, AllOf, AnyOf, Not, Quantified]  # noqa: UP007 - recursive alias


@dataclass(frozen=True)
class Rule:
    id: str
    title: Localized
    severity: Severity
    rationale: Localized
    remediation: Localized
    check: Expr
    message: Localized
    pack_id: str
    references: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    applies_to: Expr | None = None
    source: str = ""  # file:line where the rule is defined
    # One command per OS family, shown as is (no prose, no placeholders); the
    # `remediation` text stays the explanation for every family.
    fix: Mapping[OsFamily, str] = field(default_factory=dict)

    def fix_for(self, family: OsFamily | None) -> str | None:
        """The fix command for a host of `family` (see `os_family`), None if the rule
        has none for it."""
        return None if family is None else self.fix.get(family)


@dataclass(frozen=True)
class Pack:
    id: str
    version: str
    title: Localized
    rules: tuple[Rule, ...]
    source: str = ""


@dataclass(frozen=True)
class RuleSet:
    """Every rule of every loaded pack, in load order; rule ids are unique."""

    packs: tuple[Pack, ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for pack in self.packs for rule in pack.rules)

    def get(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None
