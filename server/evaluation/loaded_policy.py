"""The collector's policy: rule packs, waivers, scopes, frameworks and score weights.

The collector evaluates through `ServerPolicy` only. It uses `rules.policy.bundle`
(`load_policy` / `evaluate_policy`) when that module exists, and falls back to the
plain rule set (`rules.language.loader.load_rules` + `rules.engine.evaluate`) otherwise, so
the collector works before and after waivers and frameworks land.

`fingerprint` names everything that can change a result: every loaded file's
content and the score weights. Hosts store the fingerprint of the policy they were
evaluated with; a replica that loads a different one re-evaluates them (`reeval`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rules.engine import evaluate
from rules.language.loader import expand_paths, load_rules
from rules.language.model import RuleSet, Severity
from rules.results import RuleResult
from server.config import ServerConfig


@dataclass(frozen=True)
class Outcome:
    """The results of one evaluation and the expired waivers it met."""

    results: list[RuleResult]
    expired_waivers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ServerPolicy:
    ruleset: RuleSet
    fingerprint: str
    weights: Mapping[Severity, float]
    frameworks: Any = None  # rules.policy.bundle frameworks when available, else None
    _policy: Any = None  # the rules.policy.bundle.Policy when available

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(rule.id for rule in self.ruleset.rules)

    def evaluate(
        self, facts: Mapping[str, Any], agency: str, hostname: str, agent_id: str, today: date
    ) -> Outcome:
        if self._policy is None:
            return Outcome(evaluate(self.ruleset, facts))
        module = _policy_module()
        assert module is not None  # _policy is only set when the module exists
        subject = module.Subject(agency=agency, hostname=hostname, agent_id=agent_id)
        evaluation = module.evaluate_policy(self._policy, facts, subject, today)
        return Outcome(list(evaluation.results), list(evaluation.expired_waivers))


def _policy_module() -> Any:
    try:
        return importlib.import_module("rules.policy.bundle")
    except ModuleNotFoundError:
        return None


def load_server_policy(config: ServerConfig) -> ServerPolicy:
    """Load the configured policy; raises rules.errors.RuleLoadError with every problem."""
    rules = list(config.rule_paths())
    module = _policy_module()
    weights_text = ",".join(f"{s.value}={w!r}" for s, w in sorted(config.weights.items()))
    if module is not None:
        frameworks = list(config.frameworks)
        if config.rules is None and not frameworks:
            # The built-in packs come with the built-in framework mappings.
            frameworks = [
                importlib.import_module("rules.policy.frameworks").builtin_frameworks_dir()
            ]
        policy = module.load_policy(
            rules,
            waivers=list(config.waivers),
            scopes=list(config.scopes),
            frameworks=frameworks,
        )
        fingerprint = _sha256(f"{policy.fingerprint}|weights:{weights_text}")
        return ServerPolicy(policy.ruleset, fingerprint, config.weights, policy.frameworks, policy)
    ruleset = load_rules(rules)
    return ServerPolicy(ruleset, files_fingerprint(rules, weights_text), config.weights)


def files_fingerprint(paths: Sequence[Path], extra: str = "") -> str:
    """sha256 over every rule file's name and content (sorted), plus `extra`."""
    digest = hashlib.sha256()
    for path in sorted(expand_paths(paths)):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(extra.encode())
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
