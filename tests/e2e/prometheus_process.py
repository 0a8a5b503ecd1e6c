"""One helper that runs Debian's real Prometheus against a collector, for the tests.

Prometheus listens on a free loopback port, scrapes the collector every second under
the job name `canhgac` (the name the shipped rules expect), evaluates the given rule
files, and is stopped when the block ends.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support import free_port


def wait_for(check: Callable[[], object], what: str, timeout: float, step: float = 0.5) -> None:
    """Poll `check` until it is true (Prometheus not answering yet counts as not yet);
    fails the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(step)
    pytest.fail(f"never saw {what}")


@contextmanager
def running_prometheus(
    binary: str, collector_url: str, workdir: Path, rule_files: Sequence[Path] = ()
) -> Iterator[str]:
    """Yield the URL of a Prometheus scraping `collector_url`; its data stays in `workdir`."""
    target = collector_url.removeprefix("http://")
    rules = f"rule_files: [{', '.join(repr(str(path)) for path in rule_files)}]\n"
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        + (rules if rule_files else "")
        + "scrape_configs:\n"
        "  - job_name: canhgac\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    with (workdir / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)
