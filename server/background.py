"""A replica's background work, and the policy hot-reload.

While the HTTP app runs (`replica_background`, entered by its lifespan), each replica:
- refreshes its in-memory host state from the database, so the metrics of every
  replica converge on the reports the others stored;
- checks the policy files; on change (or SIGHUP) reloads them and re-evaluates every
  host's latest facts (one replica at a time, under the lease in
  `server.evaluation.reeval`): `reload_and_reevaluate`;
- applies the facts retention every `retention_every_seconds` (hourly), one replica
  or worker at a time (`server.evaluation.lease`; `server.storage.retention`).
All of it is safe with several replicas. A loop never dies: a failure is logged and
the next period tries again (a replica that silently stopped converging would be
worse than one that complains).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from rules.errors import RuleLoadError
from rules.language.loader import expand_paths
from server.clock import Clock
from server.config import ServerConfig
from server.errors import DatabaseError
from server.evaluation.lease import RETENTION_ROW, PeriodicLease
from server.evaluation.loaded_policy import ServerPolicy
from server.evaluation.reeval import Reevaluator
from server.ingest.service import IngestService
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database
from server.storage.retention import prune

log = logging.getLogger(__name__)

# Each replica asks for the retention's turn this often at most (a quarter of the
# period when shorter); a turn is held for the period, or this long at least.
PRUNE_CHECK_SECONDS = 300.0
LEASE_HOLD_SECONDS = 600.0
PolicyFiles = tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size), sorted as expanded


class Replica(Protocol):
    """What the background work reads and updates (the app's `Runtime` is one)."""

    policy_files: PolicyFiles  # as last seen by `reload_and_reevaluate`

    @property
    def config(self) -> ServerConfig: ...

    @property
    def database(self) -> Database: ...

    @property
    def service(self) -> IngestService:
        """Holds the current policy; `reload_and_reevaluate` swaps it as a whole."""
        ...

    @property
    def cache(self) -> HostStateCache: ...

    @property
    def reevaluator(self) -> Reevaluator: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def policy_loader(self) -> Callable[[], ServerPolicy] | None:
        """Reloads the policy from its files; None: the policy never changes."""
        ...


@asynccontextmanager
async def replica_background(replica: Replica) -> AsyncIterator[None]:
    """Load the host state, then run the background loops until the block ends.

    SIGHUP asks for a policy reload where a signal handler can be installed (only in
    the main thread: tests run the server in another one).
    """
    await run_in_threadpool(replica.cache.refresh, replica.database)
    reload_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    with suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    loops: list[Coroutine[Any, Any, None]] = [
        refresh_forever(replica.cache, replica.database, replica.config.metrics_refresh_seconds),
        policy_forever(replica, reload_requested),
        prune_forever(replica),
    ]
    tasks = [asyncio.create_task(work) for work in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        with suppress(ValueError, RuntimeError, NotImplementedError):
            loop.remove_signal_handler(signal.SIGHUP)


async def refresh_forever(cache: HostStateCache, database: Database, seconds: float) -> None:
    """Reload host state from the database so replicas converge on each other's writes."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(cache.refresh, database)
        except DatabaseError as e:
            # Keep serving the last known state; the next period tries again.
            log.warning("host state refresh failed: %s", e)
        except Exception:
            log.exception("host state refresh failed unexpectedly; retrying next period")


async def prune_forever(replica: Replica) -> None:
    """Apply the retention every `retention_every_seconds`, by one replica (or worker)
    at a time: each asks for the turn a few times per period (`PeriodicLease`)."""
    every = replica.config.retention_every_seconds
    lease = PeriodicLease(replica.database, RETENTION_ROW, replica.clock)
    period, hold = timedelta(seconds=every), timedelta(seconds=max(every, LEASE_HOLD_SECONDS))
    while True:
        await asyncio.sleep(min(every / 4, PRUNE_CHECK_SECONDS))
        try:
            if not await run_in_threadpool(lease.claim, period, hold):
                continue  # another replica's turn, or not due yet
            try:
                pruned = await run_in_threadpool(
                    prune, replica.database, replica.clock(), replica.config.retention_days
                )
            finally:
                await run_in_threadpool(lease.release)
        except DatabaseError as e:
            log.warning("retention failed: %s", e)
            continue
        except Exception:
            log.exception("retention failed unexpectedly; retrying next period")
            continue
        log.info(
            "retention ran (lease %s): deleted %d reports, %d blobs",
            lease.owner[:8],
            pruned.reports,
            pruned.blobs,
        )


async def policy_forever(replica: Replica, reload_requested: asyncio.Event) -> None:
    """Re-evaluate at start when needed; then on SIGHUP or every policy_check_seconds,
    reload the policy (if a loader was given) and re-evaluate when it changed."""
    forced = False
    while True:
        try:
            await run_in_threadpool(reload_and_reevaluate, replica, forced)
        except (DatabaseError, RuleLoadError) as e:
            log.warning("policy reload / re-evaluation failed: %s", e)
        except Exception:
            log.exception("policy reload / re-evaluation failed unexpectedly; retrying")
        forced = False
        with suppress(TimeoutError):
            await asyncio.wait_for(reload_requested.wait(), replica.config.policy_check_seconds)
            forced = True
        reload_requested.clear()


def policy_files_signature(config: ServerConfig) -> PolicyFiles:
    """Path, mtime and size of every policy file: cheap enough to compare every minute."""
    paths = [*config.rule_paths(), *config.waivers, *config.scopes, *(config.frameworks or ())]
    # The vulnerability feed store too: an import (a new file swapped in) re-matches.
    paths.append(config.vulndb_file)
    signature = []
    for path in expand_paths(paths):
        try:
            stat = path.stat()
        except OSError:
            signature.append((str(path), -1, -1))
            continue
        signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def reload_and_reevaluate(replica: Replica, force: bool = True) -> int:
    """Reload the policy from its files (when forced, or when a file's size or mtime
    changed); re-evaluate the hosts that are not at its fingerprint. Returns how many
    hosts this replica re-evaluated."""
    signature = policy_files_signature(replica.config)
    changed = signature != replica.policy_files
    replica.policy_files = signature
    if replica.policy_loader is not None and (force or changed):
        loaded = replica.policy_loader()
        if loaded.fingerprint != replica.service.policy.fingerprint:
            log.info(
                "policy changed: %d rules, fingerprint %s",
                len(loaded.ruleset.rules),
                loaded.fingerprint[:12],
            )
            replica.service.policy = loaded
    policy = replica.service.policy
    if not replica.reevaluator.pending(policy):
        return 0
    outcome = replica.reevaluator.run(policy)
    if outcome.hosts:
        log.info("re-evaluated %d hosts with policy %s", outcome.hosts, policy.fingerprint[:12])
        replica.cache.refresh(replica.database)
    return outcome.hosts
