"""Building the `canhgac.facts/v1` document: the envelope plus one key per domain.

Every collector runs in its own daemon thread with its own time budget (see
`registry.BUDGETS`), all of them within one overall budget.
Whatever a collector does (raise, hang, return partial data), the document is still
produced: a failure becomes an `errors` entry `{domain, kind, reason}`. A collector
that outlives the budget is abandoned, not killed (Python threads cannot be), which is
why collectors must not hold locks or write files.

The watchdog (`Watchdog`, one per process so the daemon's cycles share it): a
collector whose own thread used more than `CPU_BUDGET_SECONDS` of CPU in a cycle, or
one of whose commands the runner stopped at its CPU or memory limit (see
`agent.runner.ChildLimits`), is reported and then skipped for `SKIP_SECONDS`: the next
documents carry a `skipped` errors entry naming why and until when. The agent's own
resident set growing by more than `RSS_GROWTH_BUDGET_BYTES` during a cycle is treated
the same way, against the collector that used the most CPU (threads share one heap:
that is the best guess there is). osquery's watchdog (200 MB, 10 % CPU over 12 s) is
the ceiling: 5 CPU-s a cycle is 0.6 % of a core at the default 15-minute interval.
A collector abandoned at its time limit is not started again while that run still
hangs (`skipped`), so a hung collector costs one thread, not one more every cycle.
`restore_carried` and `keep_carried` hand the watchdog's skips and the updates cache
from one process to the next (`run --once` from a timer), through `agent.state.carry`.
"""

from __future__ import annotations

import dataclasses
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    CollectorFn,
    ErrorKind,
    Issue,
    clip,
    rfc3339_utc,
)
from agent.collectors.platforms.cache import CACHE, OutputCache
from agent.collectors.registry import COLLECTORS, budget_of
from agent.collectors.system import OneCollection
from agent.errors import StateError
from agent.runner import take_overruns
from agent.state.carry import Carried, SavedSkip, load_carried, save_carried
from agent.state.identity import Identity
from rules.derived import add_derived, parse_timestamp
from rules.facts import SCHEMA_ID, Domain

DEFAULT_BUDGET_SECONDS = 60.0
MAX_ERRORS = 256  # the schema's bound on `errors`
MAX_REASON = 4096
CPU_BUDGET_SECONDS = 5.0  # a collector's own thread, per cycle
# Growth of the agent's resident set in one cycle: a steady daemon's RSS is ~60 MiB
# (bench/agent_daemon.py), so this keeps it under osquery's 200 MB.
RSS_GROWTH_BUDGET_BYTES = 128 * 1024 * 1024
SKIP_SECONDS = 3600.0
ABANDONED_GRACE_SECONDS = 0.5

WatchdogListener = Callable[[Domain, str], None]


class Watchdog:
    """Which collectors went over budget, and until when they are skipped."""

    def __init__(
        self,
        *,
        cpu_budget: float = CPU_BUDGET_SECONDS,
        rss_budget: int = RSS_GROWTH_BUDGET_BYTES,
        skip_seconds: float = SKIP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpu_budget, self.rss_budget, self.skip_seconds = cpu_budget, rss_budget, skip_seconds
        self._clock = clock
        self._until: dict[Domain, tuple[float, str]] = {}
        self._abandoned: dict[Domain, threading.Thread] = {}
        self._lock = threading.Lock()
        # Told of every stop (the daemon logs it); the document says it in `errors`.
        self.listener: WatchdogListener | None = None

    def abandoned(self, domain: Domain, thread: threading.Thread) -> None:
        """`domain`'s collector outlived its time budget and still runs in `thread`."""
        with self._lock:
            self._abandoned[domain] = thread

    def skipped(self, domain: Domain) -> str | None:
        """Why `domain` is skipped this cycle, or None when it may run."""
        with self._lock:
            # Threads cannot be killed: starting the collector again while its last
            # run still hangs would pile up one more thread every cycle.
            previous = self._abandoned.get(domain)
            if previous is not None:
                previous.join(ABANDONED_GRACE_SECONDS)  # it may be just finishing
                if previous.is_alive():
                    return "skipped: its previous run, abandoned at its time limit, still runs"
                del self._abandoned[domain]
            until = self._until.get(domain)
            if until is None:
                return None
            left = until[0] - self._clock()
            if left <= 0:
                del self._until[domain]
                return None
        return f"skipped by the watchdog for {left / 60:.0f} more min: {until[1]}"

    def stop(self, domain: Domain, reason: str) -> None:
        with self._lock:
            self._until[domain] = (self._clock() + self.skip_seconds, reason)
        if self.listener is not None:
            self.listener(domain, reason)

    def saved(self) -> list[SavedSkip]:
        """The skips still running, with the seconds left."""
        now = self._clock()
        with self._lock:
            until = list(self._until.items())
        return [SavedSkip(d.value, end - now, why) for d, (end, why) in until if end > now]

    def restore(self, skips: Iterable[SavedSkip]) -> None:
        """Adopt a previous process's skips for domains this one has not stopped; never
        for longer than this watchdog would skip. A domain this agent does not know
        (written by another version) is left out: it has no collector to skip."""
        now = self._clock()
        known = {d.value: d for d in Domain}
        with self._lock:
            for skip in skips:
                domain = known.get(skip.domain)
                if domain is None or domain in self._until or skip.left_seconds <= 0:
                    continue
                left = min(skip.left_seconds, self.skip_seconds)
                self._until[domain] = (now + left, skip.reason)

    def check(self, domain: Domain, cpu_seconds: float | None, overruns: list[str]) -> None:
        """After a collector ran: over any budget, it is stopped for a while."""
        if overruns:
            self.stop(domain, "; ".join(overruns))
        elif cpu_seconds is not None and cpu_seconds > self.cpu_budget:
            self.stop(
                domain, f"used {cpu_seconds:.1f} CPU-s, over its budget of {self.cpu_budget:g}"
            )


WATCHDOG = Watchdog()


def restore_carried(
    directory: Path, watchdog: Watchdog = WATCHDOG, cache: OutputCache = CACHE
) -> StateError | None:
    """Take over what the previous process left in `directory`; the problem, if any
    (the run goes on without it)."""
    try:
        carried = load_carried(directory)
    except StateError as e:
        return e
    cache.restore(list(carried.outputs))
    watchdog.restore(carried.skips)
    return None


def keep_carried(
    directory: Path, watchdog: Watchdog = WATCHDOG, cache: OutputCache = CACHE
) -> StateError | None:
    """Leave the updates cache and the watchdog's skips for the next process."""
    try:
        save_carried(directory, Carried(tuple(cache.saved()), tuple(watchdog.saved())))
    except StateError as e:
        return e
    return None


def rss_bytes() -> int | None:
    """The agent's resident set now (Linux), None where /proc cannot say."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class _Slot:
    """Where a collector thread leaves its outcome, and the CPU its thread used."""

    outcome: Collected | None = None
    error: Issue | None = None
    cpu_seconds: float | None = None

    def run(self, fn: CollectorFn, ctx: CollectContext) -> None:
        started = time.thread_time()
        try:
            self.outcome = fn(ctx)
        except CollectorError as e:
            self.error = Issue(e.kind, e.reason)
        except Exception as e:  # noqa: BLE001 - a collector bug must cost one domain, not the report
            self.error = Issue(ErrorKind.FAILED, f"{type(e).__name__}: {e}")
        finally:
            self.cpu_seconds = time.thread_time() - started


def run_collectors(
    ctx: CollectContext,
    collectors: Mapping[Domain, CollectorFn],
    budget_seconds: float,
    budgets: Callable[[Domain], float] = budget_of,
    watchdog: Watchdog = WATCHDOG,
) -> dict[Domain, Collected | Issue]:
    """Run `collectors` concurrently; each domain maps to its output or to why it has none.

    Each collector has its own budget (`budgets`), all of them within `budget_seconds`;
    the ones the watchdog stopped are skipped.
    """
    started = time.monotonic()
    rss_before = rss_bytes()
    running: list[tuple[Domain, threading.Thread, _Slot]] = []
    outcomes: dict[Domain, Collected | Issue] = {}
    for domain, fn in collectors.items():
        why = watchdog.skipped(domain)
        if why is not None:
            outcomes[domain] = Issue(ErrorKind.SKIPPED, why)
            continue
        slot = _Slot()
        # The collector is told when it will be abandoned, so bounded work of its own
        # (the certificates probes) ends in time for its result to be used.
        own = dataclasses.replace(ctx, deadline=started + min(budget_seconds, budgets(domain)))
        thread = threading.Thread(
            target=slot.run, args=(fn, own), name=f"collector-{domain}", daemon=True
        )
        thread.start()
        running.append((domain, thread, slot))

    slowest: tuple[float, Domain] | None = None
    for domain, thread, slot in running:
        allowed = min(budget_seconds, budgets(domain))
        thread.join(max(0.0, started + allowed - time.monotonic()))
        watchdog.check(domain, slot.cpu_seconds, take_overruns(thread.name))
        if slot.cpu_seconds is not None and (slowest is None or slot.cpu_seconds > slowest[0]):
            slowest = (slot.cpu_seconds, domain)
        if thread.is_alive():
            watchdog.abandoned(domain, thread)
            outcomes[domain] = Issue(
                ErrorKind.TIMEOUT, f"collector did not finish within {allowed:g}s"
            )
        elif slot.outcome is not None:
            outcomes[domain] = slot.outcome
        else:
            outcomes[domain] = slot.error or Issue(ErrorKind.FAILED, "collector returned nothing")
    rss_after = rss_bytes()
    if rss_before is not None and rss_after is not None and slowest is not None:
        grown = rss_after - rss_before
        if grown > watchdog.rss_budget:
            watchdog.stop(
                slowest[1],
                f"the agent's memory grew by {grown // 2**20} MiB in one cycle, over its "
                f"budget of {watchdog.rss_budget // 2**20} MiB; this collector used the most CPU",
            )
    # Keep the document's domain order, skipped ones included.
    return {domain: outcomes[domain] for domain in collectors}


def collect_facts(
    ctx: CollectContext,
    identity: Identity,
    *,
    domains: Iterable[Domain] | None = None,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    registry: Mapping[Domain, CollectorFn] = COLLECTORS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """One facts document for the host `ctx` reads, from the `domains` asked for."""
    started = now()
    # Collectors that date things (ages, first sight) use the same clock and instant,
    # and the ones that read the socket table share one reading.
    ctx = dataclasses.replace(ctx, now=lambda: started, system=OneCollection(ctx.system))
    wanted = set(registry) if domains is None else set(domains)
    unknown = wanted - set(registry)
    selected = {domain: fn for domain, fn in registry.items() if domain in wanted}

    document: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "report_id": str(uuid.uuid4()),
        "agent_id": identity.agent_id,
        "seq": identity.seq,
        **({"seq_epoch": identity.seq_epoch} if identity.seq_epoch else {}),
        "collected_at": rfc3339_utc(started),
        "agent_version": __version__,
    }
    errors: list[dict[str, str]] = [
        _error(domain, Issue(ErrorKind.UNSUPPORTED, "this agent has no collector for it"))
        for domain in sorted(unknown)
    ]
    for domain, outcome in run_collectors(ctx, selected, budget_seconds).items():
        if isinstance(outcome, Issue):
            errors.append(_error(domain, outcome))
            continue
        document[domain.value] = outcome.data
        errors.extend(_error(domain, issue) for issue in outcome.issues)
    document["errors"] = errors[:MAX_ERRORS]
    # Ages come from the one shared formula, as of `collected_at` exactly as written,
    # so the collector (which stores timestamps and re-derives ages) sees the same values.
    as_written = parse_timestamp(document["collected_at"])
    assert as_written is not None
    return add_derived(document, as_written)


def _error(domain: Domain, issue: Issue) -> dict[str, str]:
    return {
        "domain": domain.value,
        "kind": issue.kind.value,
        "reason": clip(issue.reason, MAX_REASON),
    }
