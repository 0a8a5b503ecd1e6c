"""The collector's loaded policy: rule packs, waivers, scopes, frameworks and score weights.

The collector evaluates through `ServerPolicy` only: `rules.policy.bundle` loads and
evaluates (packs + waivers + scoped parameters), and this module adds what only the
collector has, the configured score weights.

`fingerprint` names everything that can change a result: every loaded file's
content, the score weights and the vulnerability feed store's generation. (The
`lan_managed` domain, from the agency's enrolled hosts, is not in it: see `lan`.) Hosts
store the fingerprint of the policy they were evaluated with; a replica that loads a
different one re-evaluates them (`reeval`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rules.engine.evaluation import compiled
from rules.language.model import RuleSet, Severity
from rules.policy.bundle import Policy, Subject, evaluate_policy, load_policy
from rules.policy.frameworks import Framework, builtin_frameworks_dir
from rules.policy.waivers import apply_waivers
from rules.results import RuleResult
from server.config import ServerConfig
from server.evaluation.carry import DomainDigests, ResultCarry, key_function
from server.evaluation.lan import DOMAIN as LAN_DOMAIN
from server.evaluation.lan import ManagedLan
from server.vulns.matching import VulnMatcher


@dataclass(frozen=True)
class Outcome:
    """The results of one evaluation and the expired waivers it met."""

    results: list[RuleResult]
    expired_waivers: list[dict[str, Any]]


@dataclass(frozen=True)
class ServerPolicy:
    """A loaded `Policy` with the collector's score weights and their joint fingerprint."""

    policy: Policy
    fingerprint: str
    weights: Mapping[Severity, float]
    # Adds the derived `vulnerabilities` domain at evaluation (None: no such domain).
    vulns: VulnMatcher | None = None
    # Adds the derived `lan_managed` domain (None: no loaded rule reads it).
    lan: ManagedLan | None = None
    # Results of rules whose inputs did not change, per host, for this policy only.
    carry: ResultCarry = field(default_factory=ResultCarry, compare=False, repr=False)

    @property
    def ruleset(self) -> RuleSet:
        return self.policy.ruleset

    @property
    def frameworks(self) -> tuple[Framework, ...]:
        return self.policy.frameworks

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(rule.id for rule in self.ruleset.rules)

    def evaluate(
        self,
        facts: Mapping[str, Any],
        agency: str,
        hostname: str,
        agent_id: str,
        today: date,
        *,
        digests: DomainDigests | None = None,
    ) -> Outcome:
        """Judge one host. With `digests` (each domain's digests, see `carry`), rules
        whose inputs are those of the host's last evaluation in this process are
        carried forward instead of evaluated again: the same results."""
        subject = Subject(agency=agency, hostname=hostname, agent_id=agent_id)
        document = facts
        if self.vulns is not None:
            facts = self.vulns.enrich(facts, today)
        if self.lan is not None:
            facts = self.lan.enrich(facts, agency, agent_id)
        if digests is None:
            evaluation = evaluate_policy(self.policy, facts, subject, today)
            return Outcome(list(evaluation.results), list(evaluation.expired_waivers))
        # evaluate_policy's steps, with the engine's results carried where they can be.
        params = self.policy.scopes.params_for(subject)
        key_of = key_function(facts, document, digests)
        results = self.carry.evaluate(self.ruleset, facts, params, agent_id, key_of)
        judged, expired = apply_waivers(
            results, self.policy.waivers, subject, self.policy.scopes.groups, today
        )
        return Outcome(judged, expired)


def load_server_policy(config: ServerConfig) -> ServerPolicy:
    """Load the configured policy; raises rules.errors.RuleLoadError with every problem."""
    frameworks: list[Path] = list(config.frameworks)
    if config.rules is None and not frameworks:
        # The built-in packs come with the built-in framework mappings.
        frameworks = [builtin_frameworks_dir()]
    policy = load_policy(
        list(config.rule_paths()),
        waivers=list(config.waivers),
        scopes=list(config.scopes),
        frameworks=frameworks,
    )
    weights_text = ",".join(f"{s.value}={w!r}" for s, w in sorted(config.weights.items()))
    # The feed store's generation: an import re-evaluates every host (reeval).
    vulns = VulnMatcher(config.vulndb_file, config.vulndb_max_age_days)
    fingerprint = _sha256(f"{policy.fingerprint}|weights:{weights_text}|vulns:{vulns.generation}")
    # The agency's enrolled hosts are read only when a loaded rule judges them.
    reads_lan = any(
        LAN_DOMAIN in (compiled(rule, None).inputs.keys or ()) for rule in policy.ruleset.rules
    )
    lan = ManagedLan(config.database_url) if reads_lan else None
    return ServerPolicy(policy, fingerprint, config.weights, vulns, lan=lan)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
