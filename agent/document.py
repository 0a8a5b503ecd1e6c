"""Building the `canhgac.facts/v1` document: the envelope plus one key per domain.

Every collector runs in its own daemon thread with its own time budget (see
`registry.BUDGETS`), all of them within one overall budget.
Whatever a collector does (raise, hang, return partial data), the document is still
produced: a failure becomes an `errors` entry `{domain, kind, reason}`. A collector
that outlives the budget is abandoned, not killed (Python threads cannot be), which is
why collectors must not hold locks or write files.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
from agent.collectors.registry import COLLECTORS, budget_of
from agent.state.identity import Identity
from rules.derived import add_derived, parse_timestamp
from rules.facts import SCHEMA_ID, Domain

DEFAULT_BUDGET_SECONDS = 60.0
MAX_ERRORS = 256  # the schema's bound on `errors`
MAX_REASON = 4096


@dataclass
class _Slot:
    """Where a collector thread leaves its outcome."""

    outcome: Collected | None = None
    error: Issue | None = None

    def run(self, fn: CollectorFn, ctx: CollectContext) -> None:
        try:
            self.outcome = fn(ctx)
        except CollectorError as e:
            self.error = Issue(e.kind, e.reason)
        except Exception as e:  # noqa: BLE001 - a collector bug must cost one domain, not the report
            self.error = Issue(ErrorKind.FAILED, f"{type(e).__name__}: {e}")


def run_collectors(
    ctx: CollectContext,
    collectors: Mapping[Domain, CollectorFn],
    budget_seconds: float,
    budgets: Callable[[Domain], float] = budget_of,
) -> dict[Domain, Collected | Issue]:
    """Run `collectors` concurrently; each domain maps to its output or to why it has none.

    Each collector has its own budget (`budgets`), all of them within `budget_seconds`.
    """
    started = time.monotonic()
    running: list[tuple[Domain, threading.Thread, _Slot]] = []
    for domain, fn in collectors.items():
        slot = _Slot()
        thread = threading.Thread(
            target=slot.run, args=(fn, ctx), name=f"collector-{domain}", daemon=True
        )
        thread.start()
        running.append((domain, thread, slot))

    outcomes: dict[Domain, Collected | Issue] = {}
    for domain, thread, slot in running:
        allowed = min(budget_seconds, budgets(domain))
        thread.join(max(0.0, started + allowed - time.monotonic()))
        if thread.is_alive():
            outcomes[domain] = Issue(
                ErrorKind.TIMEOUT, f"collector did not finish within {allowed:g}s"
            )
        elif slot.outcome is not None:
            outcomes[domain] = slot.outcome
        else:
            outcomes[domain] = slot.error or Issue(ErrorKind.FAILED, "collector returned nothing")
    return outcomes


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
    # Collectors that date things (ages, first sight) use the same clock and instant.
    ctx = dataclasses.replace(ctx, now=lambda: started)
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
