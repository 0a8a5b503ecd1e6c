"""`canhgac-agent run`: one spooled cycle, and the daemon that runs it every interval.

`collect_and_ship` is one cycle (`run --once` is exactly one): collect, write the
report to the spool, deliver the spool in order.

The first cycle starts soon after start (a random delay up to `FIRST_DELAY_MAX`, so a
fleet rebooted together does not report together); each later one `interval` after the
previous start plus a random splay. Between cycles, a spool left waiting by an outage
is retried when its backoff ends, not only at the next cycle.

Signals: SIGTERM or SIGINT stop the daemon. A cycle in progress gets `stop_grace`
seconds to end (a drain stops between two reports at once); past that it is
abandoned, which is safe because a report is only ever renamed into the spool whole
and removed after the collector's 2xx. SIGHUP reloads the configuration; a
configuration that does not load is logged and the previous one kept.

The cycle runs away from the main thread, which stays free for signals and the stop
bound: in a forked child process by default, so the daemon's memory does not creep
over the years, or in a thread (`agent.worker.CycleMode`). Every dependency comes from
`load`, which the CLI builds.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

from agent.app import HostAccess, collect, state_directory
from agent.config import AgentConfig
from agent.delivery.spool import DrainResult, Outcome, Spool, Spooled, SpoolError, SpoolLimits
from agent.delivery.transport import Delivery, Transport
from agent.document import WATCHDOG, Watchdog, keep_carried, restore_carried
from agent.errors import AgentError, ShippingError, StateError
from agent.output.events import EventLog, Level
from agent.output.messages import (
    carry_error_line,
    daemon_line,
    delivery_line,
    dropped_line,
    kept_line,
    quarantined_line,
    shipping_message,
    spool_error_line,
)
from agent.worker import CycleMode, Ending, Handback, run_work
from rules.terminal import printable

FIRST_DELAY_MAX = 10.0
SPLAY_FRACTION = 0.05  # of the interval, at most SPLAY_MAX seconds
SPLAY_MAX = 60.0
STOP_GRACE_SECONDS = 20.0
# The watchdog's reasons are the runner's English text: a Vietnamese line says what
# happened in Vietnamese and leaves the details to the JSON fields and the report.
_WATCHDOG_LINE = {
    "en": "collector {domain} went over its resource budget; skipped for {minutes} min: {reason}",
    "vi": "bộ thu thập {domain} vượt giới hạn tài nguyên; tạm bỏ qua {minutes} phút",
}


def open_spool(
    config: AgentConfig,
    state_dir: Path | None,
    transport: Transport,
    interval: float | None = None,
) -> Spool:
    """The spool of the state directory, bounded as configured.

    The backoff never waits longer than the interval (nor less than its base step):
    after a long outage the backlog starts moving at the latest one interval after the
    collector is back, as a new report would have.
    """
    defaults = SpoolLimits()
    every = interval or config.interval_seconds
    limits = replace(
        defaults,
        max_reports=config.spool_max_reports or defaults.max_reports,
        max_bytes=config.spool_max_bytes or defaults.max_bytes,
        backoff_max_seconds=min(
            defaults.backoff_max_seconds, max(every, defaults.backoff_base_seconds)
        ),
    )
    return Spool(state_directory(config, state_dir), transport, limits)


@dataclass(frozen=True)
class Shipped:
    """One cycle: the report collected, where it went, and the drain of the spool.

    `spool_error` is set when the report could not be spooled (read-only or full
    disk): it was then sent directly once, `direct` holding the receipt or
    `direct_error` the failure (the report is lost only if that failed too).
    """

    report_id: str
    spooled: Spooled | None
    drain: DrainResult
    spool_error: SpoolError | None = None
    direct: Delivery | None = None
    direct_error: ShippingError | None = None
    # The updates cache and watchdog skips handed between processes (agent.state.carry)
    # could not be read or written: the cycle went on without them.
    carry_error: StateError | None = None

    @property
    def delivery(self) -> Delivery | None:
        """The collector's receipt for this cycle's report, when it was delivered."""
        if self.direct is not None:
            return self.direct
        for attempt in self.drain.attempts:
            if attempt.delivery is not None and attempt.delivery.report_id == self.report_id:
                return attempt.delivery
        return None


def collect_and_ship(
    config: AgentConfig,
    state_dir: Path | None,
    spool: Spool,
    host: HostAccess,
    wait: Callable[[float], bool] | None = None,
) -> Shipped:
    """Collect one report, spool it durably, then deliver the spool in order.

    A spool that cannot be written does not stop the agent: the report is sent
    directly (at most once) and the problem is returned for the caller to log.
    """
    directory = state_directory(config, state_dir)
    restored = restore_carried(directory)
    document = collect(config, state_dir, host)
    carry_error = keep_carried(directory) or restored
    shipped = _ship(document, spool, wait)
    return replace(shipped, carry_error=carry_error) if carry_error else shipped


def _ship(
    document: dict[str, object], spool: Spool, wait: Callable[[float], bool] | None
) -> Shipped:
    report_id = str(document["report_id"])
    try:
        spooled = spool.put(document)
    except SpoolError as e:
        try:
            direct = spool.transport.send(document)
        except ShippingError as failed:
            return Shipped(report_id, None, _drain(spool, wait), e, direct_error=failed)
        return Shipped(report_id, None, _drain(spool, wait), e, direct=direct)
    return Shipped(report_id, spooled, spool.drain(wait))


def _drain(spool: Spool, wait: Callable[[float], bool] | None) -> DrainResult:
    """Deliver what an earlier cycle spooled, when the spool can still be read."""
    try:
        return spool.drain(wait)
    except SpoolError:
        return DrainResult()


@dataclass(frozen=True)
class Setup:
    """What one configuration gives the daemon: rebuilt on SIGHUP."""

    config: AgentConfig
    state_dir: Path | None
    spool: Spool
    interval: float


class Daemon:
    def __init__(
        self,
        load: Callable[[], Setup],
        log: EventLog,
        lang: str,
        *,
        host: HostAccess | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
        rng: random.Random | None = None,
        watchdog: Watchdog = WATCHDOG,
        mode: CycleMode = CycleMode.PROCESS,
    ) -> None:
        self._load = load
        self._mode = mode
        self._log = log
        self._lang = lang
        self._host = host or HostAccess()
        self._stop_grace = stop_grace
        self._rng = rng or random.Random()  # noqa: S311 - splay only, nothing secret
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = False
        watchdog.listener = self._on_watchdog
        self._skip_minutes = round(watchdog.skip_seconds / 60)

    def _on_watchdog(self, domain: object, reason: str) -> None:
        line = _WATCHDOG_LINE["en" if self._lang == "en" else "vi"].format(
            domain=printable(str(domain)), minutes=self._skip_minutes, reason=printable(reason)
        )
        self._log.event(Level.WARNING, "collector_stopped", line, domain=str(domain), reason=reason)

    # signals ---------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()
        self._wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload = True
        self._wake.set()

    # the loop --------------------------------------------------------------------------

    def run(self) -> bool:
        """Run until SIGTERM/SIGINT. True when it stopped cleanly, False when a cycle
        had to be abandoned (the caller exits the process at once)."""
        setup = self._load()  # a bad configuration at start is the CLI's usage error
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            setup.spool.recover()
        except SpoolError as e:
            # Not fatal: each cycle then reports the spool trouble, and sends directly.
            self._log.event(Level.ERROR, "spool_error", spool_error_line(e, self._lang))
        first = self._rng.uniform(0, min(FIRST_DELAY_MAX, setup.interval))
        self._info("started", interval=setup.interval, first=first)
        next_cycle = time.monotonic() + first
        while not self._stop.is_set():
            if self._reload:
                self._reload = False
                setup = self._reloaded(setup)
            now = time.monotonic()
            if now >= next_cycle:
                if not self._in_worker(setup, self._cycle):
                    return False
                splay = self._rng.uniform(0, min(SPLAY_MAX, setup.interval * SPLAY_FRACTION))
                next_cycle = max(next_cycle + setup.interval, time.monotonic()) + splay
                continue
            retry = setup.spool.count() and setup.spool.retry_in() == 0
            if retry and not self._in_worker(setup, self._retry):
                return False
            timeout = next_cycle - time.monotonic()
            if setup.spool.count():
                timeout = min(timeout, max(setup.spool.retry_in(), 0.05))
            self._wake.wait(max(0.0, timeout))
            self._wake.clear()
        self._info("stopping")
        return True

    def _in_worker(self, setup: Setup, work: Callable[[Setup], None]) -> bool:
        """Run `work` in a child process or a thread; False when a stop came and it
        outlived the grace."""

        def job() -> Handback | None:
            work(setup)
            # Only a child's spool differs from the daemon's after the work.
            failures, not_before = setup.spool.backoff()
            return Handback(failures, not_before)

        finished = run_work(self._mode, job, self._stop, self._stop_grace)
        if finished.ending is Ending.ABANDONED:
            self._log.event(
                Level.WARNING,
                "abandoned",
                daemon_line("abandoned", self._lang, grace=self._stop_grace),
            )
            return False
        if finished.handback is not None:
            setup.spool.adopt_backoff(finished.handback.failures, finished.handback.not_before)
        return True

    def _reloaded(self, setup: Setup) -> Setup:
        try:
            new = self._load()
        except AgentError as e:
            self._log.event(
                Level.ERROR, "reload_failed", daemon_line("reload_failed", self._lang, error=e)
            )
            return setup
        self._info("reloaded", interval=new.interval)
        return new

    # one cycle -------------------------------------------------------------------------

    def _cycle(self, setup: Setup) -> None:
        try:
            shipped = collect_and_ship(
                setup.config, setup.state_dir, setup.spool, self._host, self._stop.wait
            )
        except AgentError as e:
            self._log.event(
                Level.ERROR, "cycle_failed", daemon_line("cycle_failed", self._lang, error=e)
            )
            return
        # A collector bug must not end a service meant to run for years: logged with
        # its type, and the next cycle tries again.
        except Exception as e:  # noqa: BLE001
            self._log.event(
                Level.ERROR,
                "cycle_failed",
                daemon_line("cycle_failed", self._lang, error=f"{type(e).__name__}: {e}"),
            )
            return
        report_log(self._log, shipped, self._lang)

    def _retry(self, setup: Setup) -> None:
        try:
            drained = setup.spool.drain(self._stop.wait)
        except AgentError as e:
            self._log.event(
                Level.ERROR, "cycle_failed", daemon_line("cycle_failed", self._lang, error=e)
            )
            return
        report_log(self._log, Shipped("", None, drained), self._lang)

    def _info(self, event: str, **values: object) -> None:
        self._log.event(Level.INFO, event, daemon_line(event, self._lang, **values), **values)


def report_log(log: EventLog, shipped: Shipped, lang: str) -> None:
    """One event per spooled report attempted, dropped reports and spool trouble."""
    if shipped.carry_error is not None:
        log.event(Level.WARNING, "carry_error", carry_error_line(shipped.carry_error, lang))
    if shipped.spool_error is not None:
        log.event(Level.ERROR, "spool_error", spool_error_line(shipped.spool_error, lang))
    if shipped.direct is not None:
        d = shipped.direct
        log.event(
            Level.INFO,
            "delivered",
            delivery_line(printable(d.report_id), d.status, d.score, d.failing, lang),
            report_id=d.report_id,
        )
    if shipped.direct_error is not None:
        log.event(Level.ERROR, "lost", shipping_message(shipped.direct_error, lang))
    if shipped.spooled is not None and shipped.spooled.dropped:
        log.event(
            Level.WARNING,
            "dropped",
            dropped_line(shipped.spooled.dropped, lang),
            count=shipped.spooled.dropped,
        )
    for attempt in shipped.drain.attempts:
        if attempt.outcome is Outcome.DELIVERED and attempt.delivery is not None:
            d = attempt.delivery
            log.event(
                Level.INFO,
                "delivered",
                delivery_line(printable(d.report_id), d.status, d.score, d.failing, lang),
                report_id=d.report_id,
                status=d.status,
            )
        elif attempt.outcome is Outcome.QUARANTINED:
            answer = attempt.error.detail if attempt.error is not None else attempt.reason
            log.event(
                Level.ERROR,
                "quarantined",
                quarantined_line(attempt.name, answer, lang),
                file=attempt.name,
            )
        elif attempt.error is not None:
            log.event(Level.WARNING, "not_delivered", shipping_message(attempt.error, lang))
    if shipped.drain.pending:
        log.event(
            Level.INFO,
            "kept",
            kept_line(shipped.drain.pending, shipped.drain.retry_in, lang),
            pending=shipped.drain.pending,
        )
