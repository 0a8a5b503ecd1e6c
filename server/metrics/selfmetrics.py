"""The collector's own series: its version, and how old this replica's host state is."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from server.metrics.hoststate import HostStateCache


class BuildInfoCollector(Collector):
    def __init__(self, version: str) -> None:
        self._version = version

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("canhgac_build", "The collector's version.")
        info.add_metric([], {"version": self._version})
        yield info


class StateAgeCollector(Collector):
    """How old the host-state snapshot is: a replica whose refresh fails shows it."""

    def __init__(self, cache: HostStateCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        refreshed = self._cache.refreshed_at
        family = GaugeMetricFamily(
            "canhgac_state_refresh_timestamp_seconds",
            "When this replica last refreshed its host state from the database (Unix time).",
        )
        if refreshed is not None:
            family.add_metric([], refreshed)
        yield family
        age = GaugeMetricFamily(
            "canhgac_state_age_seconds",
            "Seconds since this replica last refreshed its host state from the database.",
        )
        if refreshed is not None:
            age.add_metric([], max(0.0, time.time() - refreshed))
        yield age
