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

Second table, the per-rule aggregates (`canhgac_rule_hosts`, the framework
requirement ratio) over 100 rules per host: the first refresh (every host's results
indexed), a refresh with 1 % of the hosts' results changed (the usual case), and the
scrape's render of the aggregates after such a refresh, beside the baseline of
counting every host's results at each scrape with prometheus_client. The rows come
from a synthetic loader, so the database read of the changed hosts' rows is not in
these figures (it is one indexed `IN (...)` query per 500 hosts).

Third table, default beside detailed series: the same fleet with every host's results
indexed (so the default exposition holds the per-rule aggregates too, as a running
collector's does), rendered warm with the defaults, then with the opt-in
`canhgac_rule_failing` detail on and a cap high enough to drop nothing (one series per
failing (host, rule) pair: 1 rule in 8 fails here). Series per host, body size and
render time of each. (The opt-in certificate detail reads the database and is not in
it.)

Last, at the largest size: how long the event loop stalls during a scrape after a 1 %
change (the longest gap of a 5 ms ticker on the loop, which is what /healthz waits),
with the render in a worker thread as the collector does (`run_in_threadpool`)
beside the same render on the loop (before: every request waited the whole render).

    python bench/metrics_scale.py [--sizes 1000,10000,50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import median_seconds, record
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from rules.language.model import Localized, Severity
from rules.policy.frameworks import Framework, Requirement
from server.metrics.aggregates import (
    render_requirement_ratios,
    render_rule_hosts,
    requirement_ratios,
)
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostSnapshot, HostStateCache
from server.metrics.results import ResultsIndex, Row

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


RULES = [f"RULE-{r:03d}" for r in range(100)]
SEVERITIES = {rule: list(Severity)[r % 4] for r, rule in enumerate(RULES)}
STATUS_CYCLE = ("pass", "pass", "pass", "fail", "error", "not_applicable", "pass", "waived")
FRAMEWORK = Framework(
    id="bench",
    version="1",
    title=Localized(vi="b", en="b"),
    reference="",
    confidence="verified",
    groups=(),
    requirements=tuple(
        Requirement(
            id=f"R{k}",
            group="G",
            title=Localized(vi="r", en="r"),
            rules=tuple(RULES[k * 3 : k * 3 + 3]),
            confidence="verified",
        )
        for k in range(33)
    ),
)


def rows_of(pk: int) -> list[Row]:
    return [
        (rule, SEVERITIES[rule].value, STATUS_CYCLE[(pk + r) % len(STATUS_CYCLE)])
        for r, rule in enumerate(RULES)
    ]


def synthetic_loader(_database: object, pks: list[int]) -> dict[int, list[Row]]:
    return {pk: rows_of(pk) for pk in pks}


def naive_rule_hosts(index: dict[str, tuple[str, list[Row]]]) -> bytes:
    """The baseline: count every host's results at each scrape (prometheus_client)."""
    family = GaugeMetricFamily("canhgac_rule_hosts", "h", labels=["agency", "rule_id", "result"])
    counts: dict[tuple[str, str, str], int] = {}
    for agency, rows in index.values():
        for rule, _severity, status in rows:
            counts[(agency, rule, status)] = counts.get((agency, rule, status), 0) + 1
    for key, value in sorted(counts.items()):
        family.add_metric(list(key), value)

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield family

    registry = CollectorRegistry()
    registry.register(One())
    return generate_latest(registry)


def measure_results(size: int, repeat: int) -> dict[str, float]:
    hosts = [replace(h, results_report_pk=i + 1) for i, h in enumerate(fleet(size))]
    first_times, churn_times, render_times = [], [], []
    weights = {
        Severity.CRITICAL: 10.0,
        Severity.HIGH: 5.0,
        Severity.MEDIUM: 2.0,
        Severity.LOW: 1.0,
        Severity.INFO: 0.0,
    }
    for round_ in range(repeat):
        index = ResultsIndex(synthetic_loader)  # type: ignore[arg-type]
        started = time.perf_counter()
        index.update(None, hosts)  # type: ignore[arg-type]
        first_times.append(time.perf_counter() - started)
        changed = [
            replace(h, results_report_pk=size + 1 + i + round_)
            for i, h in enumerate(hosts[: max(1, size // 100)])
        ]
        moved = changed + hosts[len(changed) :]
        started = time.perf_counter()
        index.update(None, moved)  # type: ignore[arg-type]
        churn_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        aggregate = index.aggregate()
        body = render_rule_hosts(aggregate) + render_requirement_ratios(
            requirement_ratios(aggregate, (FRAMEWORK,), SEVERITIES, weights)
        )
        render_times.append(time.perf_counter() - started)
    naive_index = {h.agent_id: (h.agency_id, rows_of(h.results_report_pk or 0)) for h in hosts}
    return {
        "first": statistics.median(first_times),
        "churn": statistics.median(churn_times),
        "render": statistics.median(render_times),
        "naive": median_seconds(lambda: naive_rule_hosts(naive_index), repeat),
        "series": float(sum(1 for line in body.splitlines() if not line.startswith("#"))),
    }


def measure_detailed(size: int, repeat: int) -> dict[str, float]:
    """Default and detailed (rule_failing, uncapped) exposition of one fleet, warm."""
    hosts = [replace(h, results_report_pk=i + 1) for i, h in enumerate(fleet(size))]
    cache = HostStateCache(results=ResultsIndex(synthetic_loader))  # type: ignore[arg-type]
    for host in hosts:
        cache.put(host)
    cache.results.update(None, hosts)  # type: ignore[arg-type]
    out: dict[str, float] = {}
    for name, cap in (("default", 0), ("detailed", 10**9)):
        exporter, _ = build_registry(
            cache,
            "bench",
            2700.0,
            lambda: NOW,
            frameworks=lambda: (FRAMEWORK,),
            rule_failing_cap=cap,
        )
        body = exporter.render()  # the first scrape renders every host: not timed
        out[f"{name}_s"] = median_seconds(exporter.render, repeat)
        out[f"{name}_bytes"] = float(len(body))
        out[f"{name}_series"] = float(
            sum(1 for line in body.splitlines() if not line.startswith(b"#"))
        )
    return out


async def _longest_stall(scrape: Callable[[], Awaitable[object]]) -> float:
    """The longest gap, beyond its 5 ms sleep, of a ticker on the loop during `scrape`."""
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            gaps.append(time.perf_counter() - started - 0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await scrape()
    running = False
    await task
    return max(gaps)


def measure_loop_stall(size: int, repeat: int) -> dict[str, float]:
    """Event-loop stall during a scrape after a 1 % change: worker thread vs on the loop."""
    hosts = fleet(size)
    cache = HostStateCache()
    for host in hosts:
        cache.put(host)
    exporter, _ = build_registry(cache, "bench", 2700.0, lambda: NOW)
    exporter.render()
    changed = max(1, size // 100)

    def churn() -> None:
        for host in hosts[:changed]:
            cache.put(replace(host, last_seq=int(time.time_ns()), score_ratio=0.5))

    async def on_loop() -> object:
        return exporter.render()

    out: dict[str, list[float]] = {"thread": [], "loop": []}
    for _ in range(repeat):
        churn()
        out["thread"].append(
            asyncio.run(_longest_stall(lambda: run_in_threadpool(exporter.render)))
        )
        churn()
        out["loop"].append(asyncio.run(_longest_stall(on_loop)))
    return {name: statistics.median(values) for name, values in out.items()}


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
        record(
            f"scrape after a 1% change, {size} hosts",
            r["churn"],
            "s",
            baseline=r["naive"],
            baseline_name="prometheus_client generate_latest",
        )
        record(f"scrape, warm, {size} hosts", r["warm"], "s")
    if len(sizes) > 1:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"growth {sizes[-1]}/{sizes[0]} hosts: canhgac 1% chg "
            f"{large['churn'] / small['churn']:.1f}x, naive {large['naive'] / small['naive']:.1f}x"
        )
    print()
    print("per-rule aggregates, 100 rules per host, 40 agencies, 33 requirements:")
    print(
        f"{'hosts':>7} {'series':>7} {'1st refresh s':>13} {'1% refresh s':>12} "
        f"{'render s':>9} {'naive s':>8} {'naive/render':>12}"
    )
    for size in sizes:
        r = measure_results(size, args.repeat)
        print(
            f"{size:>7} {int(r['series']):>7} {r['first']:>13.3f} {r['churn']:>12.4f} "
            f"{r['render']:>9.4f} {r['naive']:>8.3f} {r['naive'] / r['render']:>11.1f}x"
        )
        record(
            f"per-rule aggregates render, {size} hosts",
            r["render"],
            "s",
            baseline=r["naive"],
            baseline_name="naive per-rule render",
        )
        record(f"per-rule aggregates 1% refresh, {size} hosts", r["churn"], "s")
    print()
    print("default beside detailed series (canhgac_rule_failing uncapped), warm scrape:")
    print(
        f"{'hosts':>7} {'default':>9} {'/host':>6} {'MB':>6} {'s':>7} "
        f"{'detailed':>9} {'/host':>6} {'MB':>6} {'s':>7} {'time x':>7}"
    )
    for size in sizes:
        r = measure_detailed(size, args.repeat)
        print(
            f"{size:>7} {int(r['default_series']):>9} {r['default_series'] / size:>6.1f} "
            f"{r['default_bytes'] / 1e6:>6.1f} {r['default_s']:>7.3f} "
            f"{int(r['detailed_series']):>9} {r['detailed_series'] / size:>6.1f} "
            f"{r['detailed_bytes'] / 1e6:>6.1f} {r['detailed_s']:>7.3f} "
            f"{r['detailed_s'] / r['default_s']:>6.1f}x"
        )
        record(
            f"series per host, detailed (rule_failing uncapped), {size} hosts",
            r["detailed_series"] / size,
            "series",
            baseline=r["default_series"] / size,
            baseline_name="default series",
            goal="default ~15 per host",
        )
        record(
            f"scrape, warm, detailed (rule_failing uncapped), {size} hosts",
            r["detailed_s"],
            "s",
            baseline=r["default_s"],
            baseline_name="default series",
        )
    largest = sizes[-1]
    stall = measure_loop_stall(largest, args.repeat)
    print()
    print(
        f"event loop stall during a scrape after a 1% change, {largest} hosts: "
        f"worker thread {stall['thread']:.3f} s, on the loop {stall['loop']:.3f} s"
    )
    record(
        f"event loop stall during a scrape, {largest} hosts",
        stall["thread"],
        "s",
        baseline=stall["loop"],
        baseline_name="render on the event loop",
    )


if __name__ == "__main__":
    main()
