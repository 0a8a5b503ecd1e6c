"""Prometheus metrics: host gauges from the in-memory cache, ingest counters.

A custom collector over `HostStateCache` builds the host series at scrape time, so a
scrape never touches the database, and a host's series disappear with it. The series
per host are bounded: one info, one score, one timestamp, five failing counts (zeros
included, so `sum` and alerts see every severity) and one error count.
Labels are `host` and `agency`, never `instance` (Prometheus owns that one). The
`host` label is the host's stored label, decided once when it was first seen
(hostname, or hostname/agent-id prefix when the hostname was taken in its agency),
so a second host with the same name never renames the first one's series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.language.model import Severity
from server.clock import Clock, utc_now
from server.metrics.hoststate import HostStateCache

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
_HOST_LABELS = ["host", "agency"]


def outcome_for_status(status: int) -> str:
    return _OUTCOME_BY_STATUS.get(status, "error")


class HostCollector(Collector):
    """Builds the per-host metric families from the cache at each scrape."""

    def __init__(
        self, cache: HostStateCache, stale_after_seconds: float, clock: Clock = utc_now
    ) -> None:
        self._cache = cache
        self._stale_after = stale_after_seconds
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        snapshots = sorted(self._cache.snapshots(), key=lambda s: (s.agency_id, s.label))
        now = self._clock().timestamp()
        info = InfoMetricFamily(
            "canhgac_host",
            "Host metadata from its newest report.",
            labels=_HOST_LABELS,
        )
        score = GaugeMetricFamily(
            "canhgac_host_score_ratio",
            "Compliance score of the host's newest report (0-1); absent when unknown.",
            labels=_HOST_LABELS,
        )
        last_report = GaugeMetricFamily(
            "canhgac_host_last_report_timestamp_seconds",
            "When the collector received the host's newest report (Unix time).",
            labels=_HOST_LABELS,
        )
        failing = GaugeMetricFamily(
            "canhgac_host_rules_failing",
            "Rules failing on the host, by severity.",
            labels=[*_HOST_LABELS, "severity"],
        )
        errors = GaugeMetricFamily(
            "canhgac_host_rules_error",
            "Rules that could not be evaluated on the host.",
            labels=_HOST_LABELS,
        )
        stale = GaugeMetricFamily(
            "canhgac_host_stale",
            "1 when the host's newest report is older than the stale threshold.",
            labels=_HOST_LABELS,
        )
        for snapshot in snapshots:
            labels = [snapshot.label, snapshot.agency_id]
            received = snapshot.last_received_at.timestamp()
            stale.add_metric(labels, 1.0 if now - received > self._stale_after else 0.0)
            info.add_metric(
                labels,
                {
                    "hostname": snapshot.hostname,
                    "agent_id": snapshot.agent_id,
                    "os": snapshot.os_pretty_name or "",
                    "agent_version": snapshot.agent_version,
                },
            )
            if snapshot.score_ratio is not None:
                score.add_metric(labels, snapshot.score_ratio)
            last_report.add_metric(labels, snapshot.last_received_at.timestamp())
            for severity in Severity:
                failing.add_metric(
                    [*labels, severity.value], float(snapshot.failing.get(severity, 0))
                )
            errors.add_metric(labels, float(snapshot.error_count))
        yield from (info, score, last_report, failing, errors, stale)


class BuildInfoCollector(Collector):
    def __init__(self, version: str) -> None:
        self._version = version

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("canhgac_build", "The collector's version.")
        info.add_metric([], {"version": self._version})
        yield info


class IngestMetrics:
    """Counters of ingest outcomes, every outcome exported from zero."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._received = Counter(
            "canhgac_reports_received",
            "Reports received, by outcome.",
            labelnames=["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self._received.labels(outcome=outcome)

    def count(self, outcome: str) -> None:
        self._received.labels(outcome=outcome).inc()

    def count_status(self, status: int) -> None:
        self.count(outcome_for_status(status))


def build_registry(
    cache: HostStateCache,
    version: str,
    stale_after_seconds: float = float("inf"),
    clock: Clock = utc_now,
) -> tuple[CollectorRegistry, IngestMetrics]:
    """A registry of our own: the process-global one would mix in every import's metrics."""
    # `_created` series double every counter for no use on dashboards; the switch is
    # process-wide in prometheus_client, and the collector process has no other users.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    registry.register(BuildInfoCollector(version))
    registry.register(HostCollector(cache, stale_after_seconds, clock))
    return registry, IngestMetrics(registry)
