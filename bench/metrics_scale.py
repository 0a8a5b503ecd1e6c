"""Benchmark: /metrics rendering at 1,000, 10,000 and 50,000 hosts.

Measures, on the same synthetic fleet in the same run (medians of `--repeat` runs):

- canhgac's exporter (`Exporter.render`): cold (every host rendered), warm (nothing
  changed since the last scrape: rendered lines reused) and warm with 1 % of the
  hosts changed (the usual case between two scrapes);
- the baseline: the naive prometheus_client rendering of exactly the same series
  (a custom collector building GaugeMetricFamily objects at every scrape, then
  `generate_latest`), which is how the exporter worked before.

It prints the time per scrape, the body size, the series count, the ratio to the
baseline and the growth ratio (time at the largest size / time at the smallest).
The exporter renders in a worker thread in the collector, so the event loop (and
/healthz) never waits for it; this measures the CPU a scrape costs.

    python bench/metrics_scale.py [--sizes 1000,10000,50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.language.model import Severity
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostSnapshot, HostStateCache

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def fleet(size: int) -> list[HostSnapshot]:
    hosts = []
    for i in range(size):
        hosts.append(
            HostSnapshot(
                agent_id=f"agent-{i:06d}",
                agency_id=f"so-{i % 40:02d}",
                hostname=f"srv-{i:06d}",
                label=f"srv-{i:06d}",
                os_pretty_name="Debian GNU/Linux 12 (bookworm)",
                agent_version="0.1.0",
                last_seq=1,
                last_collected_at=NOW,
                last_received_at=NOW - timedelta(seconds=i % 5000),
                score_ratio=(i % 100) / 100,
                error_count=i % 3,
                failing={Severity.HIGH: i % 4, Severity.MEDIUM: i % 2, Severity.LOW: 1},
                score_weight=60.0,
                updates_security=i % 5,
                updates_other=i % 17,
                update_oldest_pending_at=NOW - timedelta(days=i % 30) if i % 5 else None,
                reboot_required=i % 7 == 0,
                cert_earliest_expiry_at=NOW + timedelta(days=i % 400),
                exposed_services=i % 6,
            )
        )
    return hosts


class NaiveCollector(Collector):
    """The baseline: every sample a Python object at every scrape (the old way)."""

    def __init__(self, cache: HostStateCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        labels = ["agency", "host"]
        families: dict[str, GaugeMetricFamily] = {}

        def family(name: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            if name not in families:
                families[name] = GaugeMetricFamily(name, name, labels=[*labels, *extra])
            return families[name]

        now = NOW.timestamp()
        for s in sorted(self._cache.snapshots(), key=lambda s: (s.agency_id, s.label)):
            at = [s.agency_id, s.label]
            info = ("hostname", "agent_id", "os", "agent_version")
            family("canhgac_host_info", info).add_metric(
                [*at, s.hostname, s.agent_id, s.os_pretty_name or "", s.agent_version], 1
            )
            if s.score_ratio is not None:
                family("canhgac_host_score_ratio").add_metric(at, s.score_ratio)
            family("canhgac_host_last_report_timestamp_seconds").add_metric(
                at, s.last_received_at.timestamp()
            )
            for severity, count in s.failing.items():
                if count:
                    family("canhgac_host_rules_failing", ("severity",)).add_metric(
                        [*at, severity.value], count
                    )
            family("canhgac_host_rules_error").add_metric(at, s.error_count)
            if s.updates_security is not None and s.updates_other is not None:
                pending = family("canhgac_host_updates_pending", ("class",))
                pending.add_metric([*at, "security"], s.updates_security)
                pending.add_metric([*at, "other"], s.updates_other)
            if s.update_oldest_pending_at is not None:
                family("canhgac_host_update_oldest_pending_timestamp_seconds").add_metric(
                    at, s.update_oldest_pending_at.timestamp()
                )
            if s.reboot_required is not None:
                family("canhgac_host_reboot_required").add_metric(at, float(s.reboot_required))
            if s.cert_earliest_expiry_at is not None:
                family("canhgac_host_cert_earliest_expiry_timestamp_seconds").add_metric(
                    at, s.cert_earliest_expiry_at.timestamp()
                )
            if s.exposed_services is not None:
                family("canhgac_host_exposed_services").add_metric(at, s.exposed_services)
            stale = now - s.last_received_at.timestamp() > 2700
            family("canhgac_host_stale").add_metric(at, 1.0 if stale else 0.0)
        yield from families.values()


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(size: int, repeat: int) -> dict[str, float]:
    hosts = fleet(size)
    cache = HostStateCache()
    for host in hosts:
        cache.put(host)

    def cold() -> bytes:
        exporter, _ = build_registry(cache, "bench", 2700.0, lambda: NOW)
        return exporter.render()

    exporter, _ = build_registry(cache, "bench", 2700.0, lambda: NOW)
    body = exporter.render()
    warm = median_seconds(exporter.render, repeat)
    changed = max(1, size // 100)

    churn_times = []
    for _ in range(repeat):
        for host in hosts[:changed]:  # fresh snapshots each round, outside the timing
            cache.put(replace(host, last_seq=int(time.time_ns()), score_ratio=0.5))
        started = time.perf_counter()
        exporter.render()
        churn_times.append(time.perf_counter() - started)
    registry = CollectorRegistry()
    registry.register(NaiveCollector(cache))
    naive_body = generate_latest(registry)
    return {
        "cold": median_seconds(cold, repeat),
        "warm": warm,
        "churn": statistics.median(churn_times),
        "naive": median_seconds(lambda: generate_latest(registry), repeat),
        "bytes": float(len(body)),
        "naive_bytes": float(len(naive_body)),
        "series": float(sum(1 for line in body.splitlines() if not line.startswith(b"#"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'hosts':>7} {'series':>8} {'MB':>6} {'cold s':>8} {'warm s':>8} "
        f"{'1% chg s':>9} {'naive s':>8} {'naive/1%chg':>11}"
    )
    results = {}
    for size in sizes:
        r = measure(size, args.repeat)
        results[size] = r
        print(
            f"{size:>7} {int(r['series']):>8} {r['bytes'] / 1e6:>6.1f} {r['cold']:>8.3f} "
            f"{r['warm']:>8.3f} {r['churn']:>9.3f} {r['naive']:>8.3f} "
            f"{r['naive'] / r['churn']:>10.1f}x"
        )
    if len(sizes) > 1:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"growth {sizes[-1]}/{sizes[0]} hosts: canhgac 1% chg "
            f"{large['churn'] / small['churn']:.1f}x, naive {large['naive'] / small['naive']:.1f}x"
        )


if __name__ == "__main__":
    main()
