"""The certificates probes never outlast the collector's budget (issue 9).

Their own deadline is 15 s, but a collection with a shorter overall budget abandons the
collector at that budget: the probes' answers, the certificate files and the `skipped`
entry were all lost, the domain reported only as a timeout. For real: listeners on
loopback that the kernel accepts and nobody answers, the real TLS prober, the real
`run_collectors` with a short overall budget.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from agent.collectors.base import CollectContext, Collected, CollectSettings, ErrorKind
from agent.collectors.certificates import (
    PROBE_DEADLINE,
    PROBE_MARGIN,
    PROBE_TIMEOUT,
    PROBE_WORKERS,
    collect_certificates,
    probe_deadline,
)
from agent.document import Watchdog, run_collectors
from rules.facts import Domain

BUDGET = 3.5
# Three waves of handshakes that each wait PROBE_TIMEOUT: longer than the budget.
ENDPOINTS = 2 * PROBE_WORKERS + 8


@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    with ExitStack() as stack:
        ports = []
        for _ in range(ENDPOINTS):
            listener = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            ports.append(int(listener.getsockname()[1]))
        yield ports


def test_the_probe_deadline_is_what_remains_of_the_budget() -> None:
    assert probe_deadline(None) == PROBE_DEADLINE
    assert probe_deadline(600.0) == PROBE_DEADLINE
    assert probe_deadline(3.0) == pytest.approx(3.0 - PROBE_MARGIN)
    assert probe_deadline(PROBE_MARGIN / 2) == 0.0
    assert probe_deadline(0.0) == 0.0


def test_a_short_overall_budget_still_gets_the_certificates_domain(
    tmp_path: Path, silent_ports: list[int]
) -> None:
    assert ENDPOINTS / PROBE_WORKERS * PROBE_TIMEOUT > BUDGET  # the probes alone take longer
    ctx = CollectContext(
        root=tmp_path,
        settings=CollectSettings(
            certificate_paths=(),
            tls_endpoints=tuple(f"127.0.0.1:{port}" for port in silent_ports),
            probe_listeners=False,
        ),
    )
    started = time.monotonic()
    outcomes = run_collectors(
        ctx,
        {Domain.CERTIFICATES: collect_certificates},
        BUDGET,
        watchdog=Watchdog(cpu_budget=1e9),
    )
    elapsed = time.monotonic() - started
    outcome = outcomes[Domain.CERTIFICATES]
    assert isinstance(outcome, Collected), outcome  # not abandoned as a timeout
    assert elapsed < BUDGET, elapsed
    (issue,) = outcome.issues
    assert issue.kind is ErrorKind.SKIPPED
    match = re.search(r"not answered within the ([0-9.]+)s probing deadline", issue.reason)
    assert match is not None, issue.reason
    assert float(match.group(1)) <= BUDGET - PROBE_MARGIN
    # The first wave answered (timed out) inside the deadline: unreachable items.
    assert outcome.data and all(item["reachable"] is False for item in outcome.data)
