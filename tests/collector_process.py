"""A real collector process: `canhgac-server serve` on a free loopback port.

One helper for the tests and the benchmarks (bench/ puts the repository root on
sys.path to import it). `running_collector(...)` starts the console script of the
interpreter's environment with the checkout first on PYTHONPATH, so the code that
runs is this checkout's even when the environment holds another install; it waits
until /healthz answers 200 (over TLS when `tls` is given), and stops the process on
the way out. A collector that exits or never answers raises `CollectorStartError`
with its log, which goes to a file beside the caller's other files.

Ports are chosen by binding port 0 and released just before `serve` binds them, so
another program can take one in between; `serve` then says "already in use" and exits,
and the helper tries again on another port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER = BIN / "canhgac-server"
PORT_TAKEN = "already in use"
ATTEMPTS = 3


class CollectorStartError(RuntimeError):
    """The collector exited, or did not answer /healthz in time; the message has its log."""


@dataclass(frozen=True)
class CollectorTLS:
    """`serve`'s TLS options, and what the health check presents to it."""

    cert: Path
    key: Path
    ca: Path  # verifies the collector's certificate
    client_ca: Path | None = None  # given: the collector requires client certificates
    client_cert: Path | None = None  # the health check's certificate when it does
    client_key: Path | None = None

    def serve_args(self) -> list[str]:
        args = ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        if self.client_ca is not None:
            args += ["--tls-client-ca", str(self.client_ca)]
        return args

    def requests_options(self) -> dict[str, Any]:
        """`verify` and `cert` for `requests` calls to this collector."""
        options: dict[str, Any] = {"verify": str(self.ca)}
        if self.client_cert is not None and self.client_key is not None:
            options["cert"] = (str(self.client_cert), str(self.client_key))
        return options


@dataclass
class CollectorProcess:
    """A started `serve`: its base URL, its process, and its log file."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    tls: CollectorTLS | None = None

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def healthy(self) -> bool:
        options = self.tls.requests_options() if self.tls is not None else {}
        try:
            response = requests.get(f"{self.url}/healthz", timeout=2, **options)
        except requests.RequestException:
            # Refused, TLS handshake refused (SSLError), or a read timeout while a busy
            # machine starts the process: not healthy yet, ask again.
            return False
        return response.status_code == 200

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None:
                raise CollectorStartError(
                    f"the collector exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise CollectorStartError(
                    f"the collector did not answer /healthz in {timeout:g} s:\n{self.log()}"
                )
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the collector (SIGTERM as a service manager does, SIGINT as Ctrl-C)
        and wait; killed when it does not exit in `timeout`. Its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _spawn(
    args: Sequence[str],
    log_dir: Path,
    tls: CollectorTLS | None,
    env: Mapping[str, str] | None,
) -> tuple[CollectorProcess, IO[bytes]]:
    port = free_port()
    log_path = log_dir / f"collector-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            str(SERVER),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            *(tls.serve_args() if tls is not None else []),
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_environment(env),
    )
    scheme = "https" if tls is not None else "http"
    return CollectorProcess(f"{scheme}://127.0.0.1:{port}", port, process, log_path, tls), log


@contextmanager
def running_collector(
    *args: str,
    log_dir: Path,
    tls: CollectorTLS | None = None,
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> Iterator[CollectorProcess]:
    """`canhgac-server serve --listen 127.0.0.1:<free port> [TLS options] *args`,
    healthy (unless `wait` is False: the caller watches it start), stopped at the end.

    `args` are the rest of `serve`'s options (--db, --rules, --config, --no-migrate,
    --log-level...); `env` adds environment variables.
    """
    for attempt in range(1, ATTEMPTS + 1):
        collector, log = _spawn(args, log_dir, tls, env)
        try:
            if wait:
                try:
                    collector.wait_healthy(timeout)
                except CollectorStartError:
                    if attempt < ATTEMPTS and PORT_TAKEN in collector.log():
                        continue  # another program took the port first: another port
                    raise
            yield collector
            return
        finally:
            collector.stop()
            log.close()
