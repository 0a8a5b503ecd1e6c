"""The JSON document of `canhgac-agent check --format json`, for programs.

Each result is the engine's `RuleResult.to_dict()`; a failing result also carries
`fix`, the rule's command for this host's OS family (`host.os.family`), null when the
rule has none for it, so a program gets the same command the text report prints. The
family itself is given once (`os_family`, null when the facts do not say or say
`other`) so a null `fix` can be told apart from an unknown family. Layout documented
in docs/rules.md ("`check --format json`").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.output.check import Remedy, score_dict
from rules.language.model import os_family
from rules.policy.scoring import Score
from rules.results import RuleResult, Status


def result_dict(result: RuleResult, fixes: Mapping[str, Remedy]) -> dict[str, Any]:
    data = result.to_dict()
    if result.status is Status.FAIL:
        remedy = fixes.get(result.rule_id)
        data["fix"] = remedy.command if remedy is not None else None
    return data


def check_document(
    results: Sequence[RuleResult],
    score: Score,
    fixes: Mapping[str, Remedy],
    facts: Mapping[str, Any],
) -> dict[str, Any]:
    """`fixes` is `check.remediations(ruleset, facts)`: the commands for `facts`' family."""
    family = os_family(facts.get("host"))
    return {
        "os_family": family.value if family is not None else None,
        "results": [result_dict(r, fixes) for r in results],
        "score": {**score_dict(score), "local": True},
    }
