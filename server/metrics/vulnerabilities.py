"""Vulnerability series, without CVE labels (bounded per host):

- `canhgac_host_vulnerabilities{host,agency,severity,state}`: open (CVE, source
  package) items per host, non-zero combinations only;
- `canhgac_host_vulnerabilities_unmatched{host,agency}`: 1 for a host that could not
  be matched (no store, stale feed, release not covered): no counts is not "clean";
- `canhgac_vulndb_age_seconds{feed}`: age of each imported feed's data;
- `canhgac_vulndb_max_age_seconds`: the configured `vulndb_max_age_days`, present
  whenever matching is configured, so that an alert compares the ages with it and
  tells an absent store (the maximum without any age) from a collector that is down.

Counting matches every host's latest facts (`server.read.vulnerabilities`), so it is
done by `refresh` in the background (`vulnerability_refresh`), never by a scrape: a
scrape renders the last counts and the feeds' ages as of now.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from server.clock import Clock
from server.errors import DatabaseError
from server.metrics import textformat as tf
from server.metrics.hoststate import HostStateCache
from server.read.vulnerabilities import Filters, match_hosts
from server.storage.database import Database
from server.vulns.matching import VulnMatcher

log = logging.getLogger(__name__)
HOST_VULNERABILITIES = "canhgac_host_vulnerabilities"
UNMATCHED = "canhgac_host_vulnerabilities_unmatched"
VULNDB_AGE = "canhgac_vulndb_age_seconds"
VULNDB_MAX_AGE = "canhgac_vulndb_max_age_seconds"


@dataclass(frozen=True)
class Counts:
    by_host: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    unmatched: tuple[tuple[str, str], ...] = ()


class VulnerabilityMetrics(Collector):
    def __init__(
        self,
        database: Database,
        matcher: Callable[[], VulnMatcher | None],
        cache: HostStateCache,
        clock: Clock,
    ) -> None:
        self._database = database
        self._matcher = matcher
        self._cache = cache
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = Counts()

    def refresh(self) -> None:
        """Match every host once and keep the counts (runs off the event loop)."""
        labels = {s.agent_id: s.label for s in self._cache.snapshots()}
        by_host: dict[tuple[str, str, str, str], int] = {}
        unmatched = []
        today = self._clock().date()
        with self._database.session() as session:
            for match in match_hosts(session, self._matcher(), today, Filters()):
                host = tf.sanitise(labels.get(match.agent_id, match.hostname))
                agency = tf.sanitise(match.agency)
                if match.problem is not None:
                    unmatched.append((host, agency))
                for item in match.items:
                    key = (host, agency, item["severity"], item["state"])
                    by_host[key] = by_host.get(key, 0) + 1
        with self._lock:
            self._counts = Counts(by_host, tuple(unmatched))

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families are built at collect time

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = self._counts
        hosts = GaugeMetricFamily(
            HOST_VULNERABILITIES,
            "Known vulnerabilities (CVE, source package) open on the host, by vendor"
            " severity and state (docs/vulnerabilities.md).",
            labels=["host", "agency", "severity", "state"],
        )
        for labels, value in sorted(counts.by_host.items()):
            hosts.add_metric(list(labels), value)
        yield hosts
        unmatched = GaugeMetricFamily(
            UNMATCHED,
            "1 when the host's packages could not be matched (no feed store, stale feed,"
            " release not covered).",
            labels=["host", "agency"],
        )
        for host, agency in counts.unmatched:
            unmatched.add_metric([host, agency], 1)
        yield unmatched
        ages = GaugeMetricFamily(
            VULNDB_AGE, "Age of each imported vulnerability feed's data.", labels=["feed"]
        )
        matcher = self._matcher()
        if matcher is not None and matcher.reader is not None:
            now = self._clock()
            for feed in matcher.reader.feeds:
                ages.add_metric([feed.name], (now - feed.generated_at).total_seconds())
        yield ages
        limit = GaugeMetricFamily(
            VULNDB_MAX_AGE,
            "The configured vulndb_max_age_days in seconds: an older feed makes hosts stale.",
        )
        if matcher is not None:
            limit.add_metric([], matcher.max_age_days * 86400)
        yield limit


@asynccontextmanager
async def vulnerability_refresh(
    metrics: VulnerabilityMetrics, seconds: float
) -> AsyncIterator[None]:
    """Refresh the counts now and every `seconds` while the block runs."""

    async def forever() -> None:
        while True:
            try:
                await run_in_threadpool(metrics.refresh)
            except DatabaseError as e:
                log.warning("vulnerability metrics refresh failed: %s", e)
            except Exception:
                log.exception("vulnerability metrics refresh failed unexpectedly; retrying")
            await asyncio.sleep(seconds)

    task = asyncio.create_task(forever())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
