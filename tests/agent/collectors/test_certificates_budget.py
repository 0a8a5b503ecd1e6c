"""An unprivileged user cannot break the certificates domain with idle listeners.

For real: `nobody` (through setpriv) opens 1,000 listening sockets on 127.0.0.1 that
the kernel accepts and nothing ever answers, the way a hostile local user would. The
real `canhgac-agent collect` (the real psutil socket table, the real TLS prober) must
finish within the domain's budget, keep the certificate files, and name the listeners
it did not probe in a `skipped` entry.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collectors import certificates
from agent.collectors.base import CollectContext, CollectSettings
from agent.collectors.certificates import (
    LOCAL_PROBE_TIMEOUT,
    MAX_LOCAL_PROBES,
    PROBE_DEADLINE,
    collect_certificates,
)
from agent.collectors.registry import budget_of
from agent.collectors.tlsprobe import FailureKind, Probe, ProbeFailure, TlsProber
from rules.facts import Domain
from tests.agent.certs import make
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp
from tests.support import require, require_root, require_tool

LISTENERS = 1000
# Opens the listeners, prints their ports, then holds them, answering nothing, until
# its standard input closes. Run by the system python: `nobody` may not read the venv.
_HOLDER = """
import json, resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    held.append(s)
print(json.dumps([s.getsockname()[1] for s in held]), flush=True)
sys.stdin.read()
"""


def _raise_nofile() -> None:
    # Before dropping to nobody: only root may raise the hard limit.
    resource.setrlimit(resource.RLIMIT_NOFILE, (LISTENERS + 256, LISTENERS + 256))


@pytest.fixture(scope="module")
def idle_listeners() -> Iterator[list[int]]:
    require_root()
    setpriv = require_tool("setpriv")
    python = shutil.which("python3", path="/usr/bin:/bin")
    require(python is not None, "no system python3 for the unprivileged listener holder")
    assert python is not None
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    holder = subprocess.Popen(
        [*drop, python, "-I", "-c", _HOLDER, str(LISTENERS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_raise_nofile,  # noqa: PLW1509 - single-threaded at this point
        cwd="/",
    )
    try:
        assert holder.stdout is not None
        ports = json.loads(holder.stdout.readline())
        assert len(ports) == LISTENERS
        yield ports
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def _cert_file(tmp_path: Path) -> Path:
    path = tmp_path / "portal.crt"
    path.write_bytes(make("portal.example.gov.vn").pem())
    return path


def _skipped(errors: list[dict[str, str]]) -> dict[str, str]:
    found = [e for e in errors if e["domain"] == "certificates" and e["kind"] == "skipped"]
    assert len(found) == 1, errors
    return found[0]


def test_the_collector_bounds_its_probing(idle_listeners: list[int], tmp_path: Path) -> None:
    cert = _cert_file(tmp_path)
    ctx = CollectContext(settings=CollectSettings(certificate_paths=(str(cert),)))
    started = time.monotonic()
    collected = collect_certificates(ctx)
    elapsed = time.monotonic() - started
    # The deadline, plus the handshakes in flight at that moment (up to four each).
    assert elapsed < PROBE_DEADLINE + 4 * LOCAL_PROBE_TIMEOUT + 2, elapsed
    files = [c for c in collected.data if c["source"] == "file"]
    assert [(c["path"], c["subject"]) for c in files] == [(str(cert), "CN=portal.example.gov.vn")]
    issues = [i for i in collected.issues if i.kind.value == "skipped"]
    assert len(issues) == 1
    reason = issues[0].reason
    # The cap alone leaves at least 1,000 - 96 of them unprobed.
    skipped = int(reason.split(" of ", 1)[0])
    assert skipped >= LISTENERS - MAX_LOCAL_PROBES, reason
    assert f"beyond the cap of {MAX_LOCAL_PROBES} local listeners" in reason
    assert "and " in reason and " more" in reason  # named up to a limit, the rest counted


def test_collect_keeps_file_certificates_and_reports_the_skipped(
    idle_listeners: list[int], tmp_path: Path
) -> None:
    cert = _cert_file(tmp_path)
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  certificate_paths: ['{cert}']\n")
    agent = Path(sys.executable).parent / "canhgac-agent"
    started = time.monotonic()
    done = subprocess.run(
        [str(agent), "collect", "--no-state", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=budget_of(Domain.CERTIFICATES) + 60,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    errors = document["errors"]
    assert not [e for e in errors if e["domain"] == "certificates" and e["kind"] == "timeout"]
    assert elapsed < budget_of(Domain.CERTIFICATES), elapsed
    files = [c for c in document["certificates"] if c["source"] == "file"]
    assert [c["path"] for c in files] == [str(cert)]
    assert files[0]["days_left"] > 300  # made to expire in about a year
    reason = _skipped(errors)["reason"]
    assert int(reason.split(" of ", 1)[0]) >= LISTENERS - MAX_LOCAL_PROBES, reason
    assert "TLS endpoints not probed" in reason


def _recording_ctx(ports: list[int], prober: TlsProber) -> CollectContext:
    # The socket table is a fake here (thousands of privileged ports cannot be opened
    # by a test); the ordering and the deadline under test are the collector's own.
    return CollectContext(
        root=Path("/nonexistent"),
        run=RecordedRunner(),
        system=FakeSystem(sockets=[tcp("0.0.0.0", p, pid=1) for p in ports]),
        settings=CollectSettings(
            certificate_paths=(), tls_endpoints=("portal.example.gov.vn:443",)
        ),
        tls_prober=prober,
    )


def test_configured_then_privileged_ports_first_the_rest_capped() -> None:
    asked: list[int] = []

    def prober(host: str, port: int, sni: str | None, timeout: float) -> Probe | ProbeFailure:
        asked.append(port)
        return ProbeFailure(FailureKind.NOT_TLS, "WRONG_VERSION_NUMBER")

    high = list(range(20000, 20000 + 2 * MAX_LOCAL_PROBES))
    collected = collect_certificates(_recording_ctx([*high, 8443, 443, 22], prober))
    assert sorted(asked) == sorted([443, 22, 443, *sorted([*high, 8443])[: MAX_LOCAL_PROBES - 2]])
    (issue,) = collected.issues
    assert issue.reason.startswith(
        f"{MAX_LOCAL_PROBES + 3} of {2 * MAX_LOCAL_PROBES + 4} TLS endpoints not probed "
        f"({MAX_LOCAL_PROBES + 3} beyond the cap of {MAX_LOCAL_PROBES} local listeners): "
    )


def test_probes_still_waiting_at_the_deadline_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificates, "PROBE_DEADLINE", 0.5)
    release = threading.Event()

    def prober(host: str, port: int, sni: str | None, timeout: float) -> Probe | ProbeFailure:
        if port == 5432:  # a peer that holds the handshake open
            release.wait(timeout)
        return ProbeFailure(FailureKind.NOT_TLS, "WRONG_VERSION_NUMBER")

    started = time.monotonic()
    try:
        collected = collect_certificates(_recording_ctx([22, 5432], prober))
    finally:
        release.set()
    assert time.monotonic() - started < 0.5 + LOCAL_PROBE_TIMEOUT
    assert [i.reason for i in collected.issues] == [
        "1 of 3 TLS endpoints not probed (1 not answered within the 0.5s probing deadline):"
        " 0.0.0.0:5432"
    ]


def test_an_ordinary_users_listeners_come_after_the_services(tmp_path: Path) -> None:
    # Owners read from /proc/<pid> under the root: a root daemon (pid 1) on a high port
    # and a user's (pid 2, uid 1000) many listeners on lower ones.
    for pid, uid in ((1, 0), (2, 1000)):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        os.chown(tmp_path / "proc" / str(pid), uid, uid)
    asked: list[int] = []

    def prober(host: str, port: int, sni: str | None, timeout: float) -> Probe | ProbeFailure:
        asked.append(port)
        return ProbeFailure(FailureKind.NOT_TLS, "WRONG_VERSION_NUMBER")

    user_ports = list(range(2000, 2000 + 2 * MAX_LOCAL_PROBES))
    system = FakeSystem(
        sockets=[tcp("127.0.0.1", p, pid=2) for p in user_ports] + [tcp("0.0.0.0", 9443, pid=1)]
    )
    ctx = CollectContext(
        root=tmp_path,
        run=RecordedRunner(),
        system=system,
        settings=CollectSettings(certificate_paths=()),
        tls_prober=prober,
    )
    collected = collect_certificates(ctx)
    assert 9443 in asked
    assert sorted(asked) == [*user_ports[: MAX_LOCAL_PROBES - 1], 9443]
    (issue,) = collected.issues
    assert f"127.0.0.1:{user_ports[MAX_LOCAL_PROBES - 1]}" in issue.reason
