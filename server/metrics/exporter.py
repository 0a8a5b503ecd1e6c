"""Prometheus metrics: host series and aggregates from the in-memory cache, collector self-metrics.

A scrape never touches the database: host series come from `HostStateCache`, and
each host's lines are rendered once per snapshot (`HostLines`) and reused until the
host's snapshot changes, so a scrape of 50,000 unchanged hosts is a join of strings.
Rendering runs off the event loop (the API calls `Exporter.render` in a thread).

Series per host are bounded (docs/metrics.md): zero-valued series that carry no
information (failing rules of a severity with none failing, no dropped reports) and
unknown values (a collector that failed) are not exported. Labels are `host` and
`agency`, never `instance` (Prometheus owns that one). The `host` label is the host's
stored label, decided once when it was first seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from rules.language.model import Rule, Severity
from rules.policy.frameworks import Framework
from rules.policy.scopes import Scopes
from rules.policy.scoring import DEFAULT_WEIGHTS
from server.clock import Clock, utc_now
from server.metrics import textformat as tf
from server.metrics.aggregates import ResultsExposition, render_rule_info
from server.metrics.hoststate import HostSnapshot, HostStateCache
from server.metrics.lan import LanCollector
from server.metrics.selfmetrics import BuildInfoCollector, StateAgeCollector

OUTCOMES = (
    "accepted",
    "duplicate",
    "bad_request",
    "unauthorized",
    "forbidden",
    "too_large",
    "unsupported_encoding",
    "invalid",
    "unavailable",
    "rate_limited",
    "error",
)
_OUTCOME_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_encoding",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def outcome_for_status(status: int) -> str:
    return _OUTCOME_BY_STATUS.get(status, "error")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str


# The per-host families, in exposition order; `HostLines.parts` follows this order.
HOST_FAMILIES = (
    Family("canhgac_host_info", "gauge", "Host metadata from its newest report (always 1)."),
    Family(
        "canhgac_host_score_ratio",
        "gauge",
        "Compliance score of the host's newest report (0-1); absent when unknown.",
    ),
    Family(
        "canhgac_host_last_report_timestamp_seconds",
        "gauge",
        "When the collector received the host's newest report (Unix time).",
    ),
    Family(
        "canhgac_host_rules_failing",
        "gauge",
        "Rules failing on the host, by severity (severities with none failing are absent).",
    ),
    Family("canhgac_host_rules_error", "gauge", "Rules that could not be evaluated on the host."),
    Family(
        "canhgac_host_updates_pending",
        "gauge",
        "Package updates pending on the host, by class (security, other); absent when unknown.",
    ),
    Family(
        "canhgac_host_update_oldest_pending_timestamp_seconds",
        "gauge",
        "When the agent first saw the oldest still-pending security update (Unix time).",
    ),
    Family(
        "canhgac_host_reboot_required",
        "gauge",
        "1 when the host needs a reboot to apply updates, 0 when not; absent when unknown.",
    ),
    Family(
        "canhgac_host_cert_earliest_expiry_timestamp_seconds",
        "gauge",
        "The earliest not_after among the host's certificates (Unix time).",
    ),
    Family(
        "canhgac_host_exposed_services",
        "gauge",
        "Distinct (protocol, port) bound to a non-loopback address on the host.",
    ),
    Family(
        "canhgac_host_spool_dropped_reports_total",
        "counter",
        "Reports the host's agent dropped from its full spool, as reported by the agent.",
    ),
)
STALE = Family(
    "canhgac_host_stale",
    "gauge",
    "1 when the host's newest report is older than the stale threshold.",
)


@dataclass(frozen=True)
class HostLines:
    """One host's rendered lines: one string per `HOST_FAMILIES` entry, two stale lines."""

    snapshot: HostSnapshot
    parts: tuple[bytes, ...]  # encoded once: a scrape only joins bytes
    stale_no: bytes
    stale_yes: bytes
    received: float  # last_received_at as Unix time, for the stale test at each scrape


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def render_host(snapshot: HostSnapshot) -> HostLines:
    base = [("agency", snapshot.agency_id), ("host", snapshot.label)]
    at = tf.labels(base)
    info = tf.labels(
        [
            *base,
            ("hostname", snapshot.hostname),
            ("agent_id", snapshot.agent_id),
            ("os", snapshot.os_pretty_name or ""),
            ("agent_version", snapshot.agent_version),
        ]
    )
    names = [family.name for family in HOST_FAMILIES]
    parts = [tf.sample(names[0], info, 1)]
    parts.append(
        "" if snapshot.score_ratio is None else tf.sample(names[1], at, snapshot.score_ratio)
    )
    parts.append(tf.sample(names[2], at, snapshot.last_received_at.timestamp()))
    parts.append(
        "".join(
            tf.sample(names[3], tf.labels([*base, ("severity", severity.value)]), count)
            for severity in Severity
            if (count := snapshot.failing.get(severity, 0)) > 0
        )
    )
    parts.append(tf.sample(names[4], at, snapshot.error_count))
    updates = ""
    if snapshot.updates_security is not None:
        updates += tf.sample(
            names[5], tf.labels([*base, ("class", "security")]), snapshot.updates_security
        )
    if snapshot.updates_other is not None:
        updates += tf.sample(
            names[5], tf.labels([*base, ("class", "other")]), snapshot.updates_other
        )
    parts.append(updates)
    for index, value in (
        (6, _seconds(snapshot.update_oldest_pending_at)),
        (7, None if snapshot.reboot_required is None else float(snapshot.reboot_required)),
        (8, _seconds(snapshot.cert_earliest_expiry_at)),
        (9, None if snapshot.exposed_services is None else float(snapshot.exposed_services)),
        (10, float(snapshot.spool_dropped_reports) or None),
    ):
        parts.append("" if value is None else tf.sample(names[index], at, value))
    return HostLines(
        snapshot,
        tuple(part.encode() for part in parts),
        tf.sample(STALE.name, at, 0).encode(),
        tf.sample(STALE.name, at, 1).encode(),
        snapshot.last_received_at.timestamp(),
    )


class HostExposition:
    """Renders the host families and the agency aggregates; keeps each host's lines."""

    def __init__(
        self, cache: HostStateCache, stale_after_seconds: float, clock: Clock = utc_now
    ) -> None:
        self._cache = cache
        self._stale_after = stale_after_seconds
        self._clock = clock
        self._lock = threading.Lock()  # two scrapes at once share one rendered map
        self._rendered: dict[str, HostLines] = {}

    def _lines(self, snapshots: Iterable[HostSnapshot]) -> list[HostLines]:
        fresh: dict[str, HostLines] = {}
        for snapshot in snapshots:
            known = self._rendered.get(snapshot.agent_id)
            # Snapshots are immutable and replaced on change: identity is "unchanged".
            fresh[snapshot.agent_id] = (
                known if known is not None and known.snapshot is snapshot else render_host(snapshot)
            )
        self._rendered = fresh  # hosts gone from the cache are forgotten here
        return sorted(fresh.values(), key=lambda h: (h.snapshot.agency_id, h.snapshot.label))

    def render(self) -> bytes:
        return b"".join(self.chunks())

    def chunks(self) -> list[bytes]:
        """The exposition in pieces: joined once by the caller (a 50 MB body is copied
        once, not once per layer)."""
        now = self._clock().timestamp()
        with self._lock:
            hosts = self._lines(self._cache.snapshots())
        out: list[bytes] = []
        parts = [host.parts for host in hosts]
        for index, family in enumerate(HOST_FAMILIES):
            out.append(tf.header(family.name, family.kind, family.help).encode())
            # itemgetter + extend run in C: no Python frame per host and family.
            out.extend(map(itemgetter(index), parts))
        out.append(tf.header(STALE.name, STALE.kind, STALE.help).encode())
        tail: list[str] = []
        stale_by_agency: dict[str, list[int]] = {}
        pooled: dict[str, list[float]] = {}
        for host in hosts:
            snapshot = host.snapshot
            stale = now - host.received > self._stale_after
            out.append(host.stale_yes if stale else host.stale_no)
            counts = stale_by_agency.setdefault(snapshot.agency_id, [0, 0])
            counts[1 if stale else 0] += 1
            if snapshot.score_ratio is not None and snapshot.score_weight:
                sums = pooled.setdefault(snapshot.agency_id, [0.0, 0.0])
                sums[0] += snapshot.score_ratio * snapshot.score_weight
                sums[1] += snapshot.score_weight
        tail.append(
            tf.header(
                "canhgac_agency_hosts", "gauge", "Hosts of the agency, by state (reporting, stale)."
            )
        )
        for agency, (reporting, stale_count) in sorted(stale_by_agency.items()):
            tail.append(
                tf.sample(
                    "canhgac_agency_hosts",
                    tf.labels([("agency", agency), ("state", "reporting")]),
                    reporting,
                )
            )
            tail.append(
                tf.sample(
                    "canhgac_agency_hosts",
                    tf.labels([("agency", agency), ("state", "stale")]),
                    stale_count,
                )
            )
        tail.append(
            tf.header(
                "canhgac_agency_score_ratio",
                "gauge",
                "Pooled compliance score of the agency's hosts (docs/scoring.md), 0-1.",
            )
        )
        for agency, (earned, possible) in sorted(pooled.items()):
            tail.append(
                tf.sample(
                    "canhgac_agency_score_ratio", tf.labels([("agency", agency)]), earned / possible
                )
            )
        out.append("".join(tail).encode())
        return out


class IngestMetrics:
    """Counters of ingest outcomes (every outcome exported from zero), ingest latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._received = Counter(
            "canhgac_reports_received",
            "Reports received, by outcome.",
            labelnames=["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self._received.labels(outcome=outcome)
        self.dropped_keys = Counter(
            "canhgac_report_unknown_keys_dropped",
            "Keys of accepted reports that the facts schema does not define: dropped, not stored.",
            registry=registry,
        )
        self.latency = Histogram(
            "canhgac_ingest_duration_seconds",
            "Time to answer a report upload, from request to response.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )

    def count(self, outcome: str) -> None:
        self._received.labels(outcome=outcome).inc()

    def count_status(self, status: int) -> None:
        self.count(outcome_for_status(status))


class Exporter:
    """What `/metrics` answers: host series and aggregates, rules, the registry's own."""

    def __init__(
        self,
        hosts: HostExposition,
        registry: CollectorRegistry,
        rules: Callable[[], Iterable[Rule]] = tuple,
        results: ResultsExposition | None = None,
    ) -> None:
        self.hosts = hosts
        self.registry = registry
        self._rules = rules
        self.results = results

    def render(self) -> bytes:
        """The whole exposition; CPU-bound, so the API calls it in a worker thread."""
        chunks = self.hosts.chunks()
        chunks.append(render_rule_info(self._rules()).encode())
        if self.results is not None:
            chunks.extend(self.results.chunks())  # before the registry: it counts drops
        chunks.append(generate_latest(self.registry))
        return b"".join(chunks)


def build_registry(
    cache: HostStateCache,
    version: str,
    stale_after_seconds: float = float("inf"),
    clock: Clock = utc_now,
    rules: Callable[[], Iterable[Rule]] = tuple,
    *,
    frameworks: Callable[[], Iterable[Framework]] = tuple,
    weights: Callable[[], Mapping[Severity, float]] = lambda: DEFAULT_WEIGHTS,
    scopes: Callable[[], Scopes | None] = lambda: None,
    rule_failing_cap: int = 0,
    cert_cap: int = 0,
) -> tuple[Exporter, IngestMetrics]:
    """A registry of our own: the process-global one would mix in every import's metrics."""
    # `_created` series double every counter for no use on dashboards; the switch is
    # process-wide in prometheus_client, and the collector process has no other users.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    registry.register(BuildInfoCollector(version))
    registry.register(StateAgeCollector(cache))
    registry.register(LanCollector(cache.lan))
    hosts = HostExposition(cache, stale_after_seconds, clock)
    results = ResultsExposition(
        cache.results,
        registry,
        rules=rules,
        frameworks=frameworks,
        weights=weights,
        scopes=scopes,
        rule_failing_cap=rule_failing_cap,
        certificates=cache.track_certificates() if cert_cap > 0 else None,
        cert_cap=cert_cap,
    )
    return Exporter(hosts, registry, rules, results), IngestMetrics(registry)
