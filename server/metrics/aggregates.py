"""Per-rule series (info, hosts by result), per-requirement ratios, and the opt-in
per-host failing rules.

Rendered at scrape time from `ResultsIndex` (memory only). Bounded by rules x
agencies x results (zero counts are not exported). The requirement ratio is the
score formula of docs/scoring.md over the requirement's mapped rules, pooled over
the agency's hosts: it is linear in the per-rule counts, so it is computed from them
without visiting hosts. A requirement of some security levels only is judged over
the agency's hosts of those levels and of unknown level: the counts of the hosts at
the other levels are subtracted; with none left it is not applicable, and absent
like an unassessed one (never 0). `canhgac_rule_failing` is per host and therefore off unless
a series cap is configured; series beyond the cap are counted, never silently lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter

from rules.language.model import Rule, Severity
from rules.policy.frameworks import Framework, Requirement
from rules.policy.scopes import Scopes
from rules.results import Status
from server.metrics import textformat as tf
from server.metrics.certificates import CERT_NOT_AFTER, CertificateIndex
from server.metrics.results import Aggregate, ResultsIndex

RULE_HOSTS = "canhgac_rule_hosts"
REQUIREMENT_RATIO = "canhgac_framework_requirement_ratio"
RULE_FAILING = "canhgac_rule_failing"
_COUNTED = (Status.PASS, Status.FAIL, Status.ERROR)  # the score's denominator


def render_rule_hosts(aggregate: Aggregate) -> str:
    out = [
        tf.header(
            RULE_HOSTS,
            "gauge",
            "Hosts of the agency by their latest result for the rule "
            "(pass, fail, error, not_applicable, waived); zero counts are absent.",
        )
    ]
    for agency in sorted(aggregate.counts):
        for (rule_id, status), hosts in sorted(aggregate.counts[agency].items()):
            label_text = tf.labels(
                [("agency", agency), ("rule_id", rule_id), ("result", status.value)]
            )
            out.append(tf.sample(RULE_HOSTS, label_text, hosts))
    return "".join(out)


def requirement_ratios(
    aggregate: Aggregate,
    frameworks: Iterable[Framework],
    severities: Mapping[str, Severity],
    weights: Mapping[Severity, float],
) -> list[tuple[str, str, str, float]]:
    """(framework, requirement, agency, ratio) where the ratio is defined (a
    requirement with no passing, failing or erroring weight has none: unknown)."""
    out = []
    for framework in frameworks:
        for requirement in framework.requirements:
            mapped = [
                (rule_id, weights.get(severities[rule_id], 0.0))
                for rule_id in requirement.rules
                if rule_id in severities
            ]
            for agency in sorted(aggregate.counts):
                counts = aggregate.counts[agency]
                outside = _outside(requirement, aggregate.by_level.get(agency, {}))
                earned = possible = 0.0
                for rule_id, weight in mapped:
                    passed = counts.get((rule_id, Status.PASS), 0)
                    earned += weight * (passed - _sum(outside, rule_id, (Status.PASS,)))
                    counted = sum(counts.get((rule_id, s), 0) for s in _COUNTED)
                    possible += weight * (counted - _sum(outside, rule_id, _COUNTED))
                if possible > 0:
                    out.append((framework.id, requirement.id, agency, earned / possible))
    return out


def _outside(
    requirement: Requirement, by_level: Mapping[int, Mapping[tuple[str, Status], int]]
) -> list[Mapping[tuple[str, Status], int]]:
    """The counts of the agency's hosts at levels the requirement does not belong to."""
    return [counts for level, counts in by_level.items() if not requirement.applies_at(level)]


def _sum(
    tables: Iterable[Mapping[tuple[str, Status], int]], rule_id: str, statuses: Iterable[Status]
) -> int:
    return sum(table.get((rule_id, s), 0) for table in tables for s in statuses)


def render_requirement_ratios(rows: Iterable[tuple[str, str, str, float]]) -> str:
    out = [
        tf.header(
            REQUIREMENT_RATIO,
            "gauge",
            "Score of the requirement's mapped rules pooled over the agency's hosts of "
            "its security levels (docs/scoring.md), 0-1; absent when nothing mapped was "
            "assessed or no host is at its levels (not applicable).",
        )
    ]
    for framework, requirement, agency, ratio in rows:
        label_text = tf.labels(
            [("framework", framework), ("requirement", requirement), ("agency", agency)]
        )
        out.append(tf.sample(REQUIREMENT_RATIO, label_text, ratio))
    return "".join(out)


class ResultsExposition:
    """The aggregates (re-rendered only when the results or the policy changed) and
    the capped `canhgac_rule_failing` detail."""

    def __init__(
        self,
        index: ResultsIndex,
        registry: CollectorRegistry,
        *,
        rules: Callable[[], Iterable[Rule]],
        frameworks: Callable[[], Iterable[Framework]],
        weights: Callable[[], Mapping[Severity, float]],
        scopes: Callable[[], Scopes | None] = lambda: None,
        rule_failing_cap: int = 0,
        certificates: CertificateIndex | None = None,
        cert_cap: int = 0,
    ) -> None:
        self._index = index
        self._rules = rules
        self._frameworks = frameworks
        self._weights = weights
        self._scopes = scopes
        self._cap = rule_failing_cap
        self._certificates = certificates
        self._cert_cap = cert_cap
        self._lock = threading.Lock()
        self._cached: tuple[object, bytes] | None = None
        self.dropped = Counter(
            "canhgac_metrics_series_dropped",
            "Opt-in detail series left out of scrapes by their configured cap, by family.",
            labelnames=["family"],
            registry=registry,
        )
        self.dropped.labels(family=RULE_FAILING)
        self.dropped.labels(family=CERT_NOT_AFTER)

    def chunks(self) -> list[bytes]:
        rules = self._rules()
        frameworks = self._frameworks()
        weights = self._weights()
        # Levels first: a changed scopes file moves hosts and bumps the index version.
        self._index.set_scopes(self._scopes())
        with self._lock:
            # Identity of the policy objects: a reload replaces them.
            tag = (self._index.version, id(rules), id(frameworks), id(weights))
            if self._cached is None or self._cached[0] != tag:
                aggregate = self._index.aggregate()
                severities = {rule.id: rule.severity for rule in rules}
                body = render_rule_hosts(aggregate) + render_requirement_ratios(
                    requirement_ratios(aggregate, frameworks, severities, weights)
                )
                self._cached = (tag, body.encode())
            out = [self._cached[1]]
        if self._cap > 0:
            out.append(self._failing().encode())
        if self._certificates is not None and self._cert_cap > 0:
            text, dropped = self._certificates.render(self._cert_cap)
            if dropped:
                self.dropped.labels(family=CERT_NOT_AFTER).inc(dropped)
            out.append(text.encode())
        return out

    def _failing(self) -> str:
        out = [
            tf.header(
                RULE_FAILING,
                "gauge",
                "1 per failing (host, rule) pair (opt-in, capped: "
                "canhgac_metrics_series_dropped_total counts the rest).",
            )
        ]
        written = dropped = 0
        for host in self._index.failing():
            base = [("agency", host.agency_id), ("host", host.label)]
            for rule_id, severity in host.failing:
                if written >= self._cap:
                    dropped += 1
                    continue
                label_text = tf.labels([*base, ("rule_id", rule_id), ("severity", severity)])
                out.append(tf.sample(RULE_FAILING, label_text, 1))
                written += 1
        if dropped:
            self.dropped.labels(family=RULE_FAILING).inc(dropped)
        return "".join(out)


def render_rule_info(rules: Iterable[Rule]) -> str:
    name = "canhgac_rule_info"
    out = [tf.header(name, "gauge", "The collector's rules: id, English title, severity.")]
    for rule in sorted(rules, key=lambda r: r.id):
        out.append(
            tf.sample(
                name,
                tf.labels(
                    [
                        ("rule_id", rule.id),
                        ("title", rule.title.en),
                        ("severity", rule.severity.value),
                    ]
                ),
                1,
            )
        )
    return "".join(out)
