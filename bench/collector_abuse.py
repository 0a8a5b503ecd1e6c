"""Benchmark: what abusive requests cost the collector, beside a baseline in the same run.

Memory and time figures each run in a fresh interpreter (peak RSS is per process):

- amplification: a gzip body of about 45 MB of `[]` (a few hundred KB on the wire).
  Baseline: what the collector did before, json.loads of the decompressed text, the
  limits checked afterwards. Now: decode_document with the default limits (refused
  by the pre-scan). Figure: peak RSS growth and time.
- the largest accepted report: decode_document of a valid report of 20,000 packages
  beside the previous order's first steps alone (inflate, json.loads): the whole
  decode (pre-scan, parse, shape, schema) against the part that costs memory.
- gzip members: a report followed by 200,000 empty gzip members (4 MB). Baseline: the
  previous decoder (kept here verbatim, quadratic in the number of members). Now:
  the linear decoder with the cap lifted, and with the default cap (refused).

Per request, in a real `canhgac-server serve` on loopback (a fresh one per case, warmed
by one small report): the collector process's peak RSS (VmHWM) after one request
minus its RSS before it, for a small report (the baseline), the largest accepted
report, the amplification body, a decompression bomb (1 GiB of zeros) and the
gzip-members body.

Then floods of half-sent requests, held open while /healthz is asked 5 times (a new
connection each), against this checkout's collector beside the collector as it was
before connections were admitted at open (commit BASELINE_COMMIT, extracted with
`git archive` and run from its own copy): answers counted and timed, and the
descriptors the collector holds as sockets.

- 250 half-sent requests, the collector's file limit lowered to 128 (prlimit), the
  header deadline at its default (10 s), each ask given 15 s.
- 120 half-sent requests against `--max-connections 40` (no lowered file limit),
  each ask given 5 s.

    python bench/collector_abuse.py [--per-request | --flood]
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402

from server.config import ServerConfig  # noqa: E402
from server.errors import IngestError  # noqa: E402
from server.ingest.inflate import gunzip_capped  # noqa: E402
from server.ingest.payload import decode_document  # noqa: E402
from server.ingest.service import limits_of  # noqa: E402
from tests.collector_process import CollectorProcess, running_collector  # noqa: E402
from tests.server.helpers import make_facts  # noqa: E402
from tests.support import free_port  # noqa: E402

NOW = datetime.now(UTC)
EMPTY_MEMBERS = 200_000
SERVER = str(Path(sys.executable).parent / "canhgac-server")


def _status_mib(field: str) -> float:
    # /proc, not getrusage: ru_maxrss survives execve, so a child would start with its
    # parent's peak; VmHWM belongs to the new address space.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _amplification_body() -> bytes:
    inner = b",".join([b"[]"] * 15_000_000)
    return gzip.compress(b'{"discovery": [' + inner + b"]}", compresslevel=9)


def _bomb_body() -> bytes:
    """1 GiB of zeros, gzip'd (about 1 MiB on the wire), compressed as a stream."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * 2**20
    parts = [compressor.compress(zeros) for _ in range(1024)]
    return b"".join([*parts, compressor.flush()])


def _large_report() -> bytes:
    facts = make_facts(collected_at=NOW - timedelta(minutes=1))
    items = [
        {"name": f"pkg{i}", "version": f"1.{i}-1", "architecture": "amd64"} for i in range(20_000)
    ]
    facts["packages"] = {"manager": "dpkg", "count": len(items), "items": items}
    return json.dumps(facts).encode()


def _old_gunzip(body: bytes, max_bytes: int) -> bytes:
    """The decoder before issue 14: `unused_data` copies the rest of the body per member."""
    out = bytearray()
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = body
    while True:
        chunk = decompressor.decompress(data, max_bytes - len(out) + 1)
        out += chunk
        if decompressor.eof:
            data = decompressor.unused_data
            if not data:
                break
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            continue
        data = decompressor.unconsumed_tail
        if not data and not chunk:
            break
    return bytes(out)


def _members_body() -> bytes:
    document = json.dumps(make_facts(collected_at=NOW)).encode()
    return gzip.compress(document) + gzip.compress(b"") * EMPTY_MEMBERS


BODIES = {
    "amp": _amplification_body,
    "large": lambda: gzip.compress(_large_report()),
    "gzip": _members_body,
}


def run_case(name: str, body_file: Path) -> dict[str, Any]:
    """Decode the body in `body_file` as case `name` does; peak RSS growth and time."""
    limits = limits_of(ServerConfig())
    body = body_file.read_bytes()
    # Warm: the schema validator is compiled once per process, not per report.
    decode_document(json.dumps(make_facts(collected_at=NOW)).encode(), None, limits, NOW)
    before = _status_mib("VmHWM")
    started = time.perf_counter()
    outcome = "ok"
    try:
        if name in ("amp_old", "large_loads"):
            # The previous order: inflate (capped), parse in full, check limits after.
            json.loads(gunzip_capped(body, limits.max_decompressed_bytes))
        elif name in ("amp_new", "large_new"):
            decode_document(body, "gzip", limits, NOW)
        elif name == "gzip_old":
            _old_gunzip(body, limits.max_decompressed_bytes)
        elif name == "gzip_new_uncapped":
            gunzip_capped(body, limits.max_decompressed_bytes, EMPTY_MEMBERS + 1)
        elif name == "gzip_new":
            gunzip_capped(body, limits.max_decompressed_bytes, limits.max_gzip_members)
    except IngestError as e:
        outcome = f"refused {e.status} {e.code}"
    seconds = time.perf_counter() - started
    return {
        "rss_growth_mib": _status_mib("VmHWM") - before,
        "seconds": seconds,
        "outcome": outcome,
        "wire_kib": len(body) / 1024,
    }


def _in_subprocess(name: str, body_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--case", name, str(body_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print_pair(title: str, baseline: str, now: str, workdir: Path) -> None:
    body_file = workdir / f"{baseline.split('_', maxsplit=1)[0]}.body"
    if not body_file.exists():
        body_file.write_bytes(BODIES[baseline.split("_", maxsplit=1)[0]]())
    old, new = _in_subprocess(baseline, body_file), _in_subprocess(now, body_file)
    print(f"{title} ({new['wire_kib']:.0f} KiB on the wire)")
    for label, r in (("baseline " + baseline, old), ("now      " + now, new)):
        print(
            f"  {label:<28} peak RSS +{r['rss_growth_mib']:8.1f} MiB"
            f"  {r['seconds'] * 1000:9.1f} ms  {r['outcome']}"
        )
    for what, key, scale, unit in (
        ("peak RSS growth", "rss_growth_mib", 1, "MiB"),
        ("time", "seconds", 1000, "ms"),
    ):
        record(
            f"{title}: {what} ({now})",
            new[key] * scale,
            unit,
            baseline=old[key] * scale,
            baseline_name=baseline,
        )


def _process_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _per_request_rss(case: str, body: bytes, workdir: Path) -> tuple[float, int]:
    """(peak RSS growth of the collector process in MiB, HTTP status) for one request
    with `body`, in a fresh collector warmed by one small report."""
    db_url = f"sqlite:///{workdir / f'rss-{case}.db'}"
    token = subprocess.run(
        [SERVER, "token", "create", "--db", db_url, "--agency", "so-bench"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with running_collector("--db", db_url, "--log-level", "warning", log_dir=workdir) as served:
        url = f"{served.url}/api/v1/reports"
        warm = gzip.compress(json.dumps(make_facts(seq=1, collected_at=NOW)).encode())
        requests.post(url, data=warm, headers=headers, timeout=60).raise_for_status()
        before = _process_mib(served.process.pid, "VmRSS")
        status = requests.post(url, data=body, headers=headers, timeout=120).status_code
        return _process_mib(served.process.pid, "VmHWM") - before, status


def _record_per_request(workdir: Path) -> None:
    large = json.loads(_large_report())
    large.update(seq=3, report_id=str(uuid.uuid4()))
    bodies = {
        "small report": gzip.compress(json.dumps(make_facts(seq=2, collected_at=NOW)).encode()),
        "largest accepted report (20,000 packages)": gzip.compress(json.dumps(large).encode()),
        "amplification (15 million empty lists)": (workdir / "amp.body").read_bytes(),
        "decompression bomb (1 GiB of zeros)": _bomb_body(),
        f"gzip: a report + {EMPTY_MEMBERS} empty members": (workdir / "gzip.body").read_bytes(),
    }
    growth = {
        case: _per_request_rss(str(n), body, workdir)
        for n, (case, body) in enumerate(bodies.items())
    }
    small, _ = growth["small report"]
    cap_mib = limits_of(ServerConfig()).max_decompressed_bytes / 2**20
    for case, (mib, status) in growth.items():
        if case != "small report":
            record(
                f"collector peak RSS per request: {case} (HTTP {status})",
                mib,
                "MiB",
                baseline=small,
                baseline_name="a small report",
                goal=f"a small multiple of the decompressed cap ({cap_mib:g} MiB)",
            )


# The collector before the connection cap moved to connection opening (commit 9c77f4b).
BASELINE_COMMIT = "1a5c59cb1e2b"


@dataclass(frozen=True)
class Flood:
    name: str
    half_sent: int
    file_limit: int | None  # lowered with prlimit once the collector serves
    ask_timeout: float
    serve_args: tuple[str, ...] = ()


FLOODS = (
    Flood("250 half-sent, 128 descriptors", 250, 128, 15.0),
    Flood("120 half-sent, --max-connections 40", 120, None, 5.0, ("--max-connections", "40")),
)


@dataclass(frozen=True)
class FloodResult:
    answered: int  # of 5 asks, 200
    latencies: list[float]  # of the answered asks
    slowest: float  # the slowest ask, answered or not (a timeout counts its timeout)
    statuses: list[int]  # 0: no answer within the ask's timeout
    sockets_peak: int  # the most socket descriptors the collector held, 3 s sampled
    sockets_held: int  # its socket descriptors 3 s into the flood (before the asks)
    log_lines: int


def _baseline_tree(workdir: Path) -> Path:
    """This repository at BASELINE_COMMIT, extracted beside the benchmark's files."""
    tree = workdir / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "server", "rules", "agent"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    # The baseline must really be what runs: its modules, not this checkout's.
    where = subprocess.run(
        [sys.executable, "-c", "import server.api.connections as c; print(c.__file__)"],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,  # not this checkout, which `python -c` would put first on sys.path
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not where.startswith(str(tree)):
        raise RuntimeError(f"the baseline collector would import {where}, not {tree}")
    return tree


@contextmanager
def _baseline_collector(tree: Path, workdir: Path, *args: str) -> Iterator[CollectorProcess]:
    """`serve` from the baseline tree (running_collector puts this checkout first)."""
    port = free_port()
    log_path = workdir / f"baseline-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SERVER, "serve", "--listen", f"127.0.0.1:{port}", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(tree)},
            cwd=tree,
        )
        collector = CollectorProcess(f"http://127.0.0.1:{port}", port, process, log_path)
        try:
            collector.wait_healthy()
            yield collector
        finally:
            collector.stop()


def _sockets_held(pid: int) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(FileNotFoundError):  # closed while listed
            held += os.readlink(fd).startswith("socket:")
    return held


def _flood(flood: Flood, baseline: Path | None, workdir: Path) -> FloodResult:
    """`flood` held against the collector (this checkout's, or the baseline tree's)."""
    db = workdir / f"flood-{uuid.uuid4().hex}.db"
    args = ("--db", f"sqlite:///{db}", *flood.serve_args)
    with ExitStack() as stack:
        if baseline is None:
            served = stack.enter_context(running_collector(*args, log_dir=workdir))
        else:
            served = stack.enter_context(_baseline_collector(baseline, workdir, *args))
        if flood.file_limit is not None:
            limit = (flood.file_limit, flood.file_limit)
            resource.prlimit(served.process.pid, resource.RLIMIT_NOFILE, limit)
        for _ in range(flood.half_sent):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", served.port)))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        samples = []
        # asyncio accepts in bursts (up to the file limit, then a 1 s pause on EMFILE)
        # before any connection is admitted: sample the peak, then what stays held.
        for _ in range(30):
            samples.append(_sockets_held(served.process.pid))
            time.sleep(0.1)
        held = _sockets_held(served.process.pid)
        latencies: list[float] = []
        statuses: list[int] = []
        slowest = 0.0
        for _ in range(5):
            started = time.perf_counter()
            try:
                response = requests.get(f"{served.url}/healthz", timeout=flood.ask_timeout)
                status = response.status_code
            except requests.RequestException:
                status = 0
            elapsed = time.perf_counter() - started
            statuses.append(status)
            slowest = max(slowest, elapsed)
            if status == 200:
                latencies.append(elapsed)
        log_lines = served.log().count("\n")
    return FloodResult(len(latencies), latencies, slowest, statuses, max(samples), held, log_lines)


def _record_floods(workdir: Path) -> None:
    tree = _baseline_tree(workdir)
    for flood in FLOODS:
        before = _flood(flood, tree, workdir)
        now = _flood(flood, None, workdir)
        print(f"flood: {flood.name}")
        for label, result in (("baseline", before), ("now", now)):
            print(
                f"  {label:>8}: statuses {result.statuses}, sockets held at most"
                f" {result.sockets_peak}, {result.sockets_held} 3 s in, collector log"
                f" {result.log_lines} lines"
            )
        record(
            f"flood ({flood.name}): /healthz answered 200 of 5",
            now.answered,
            "answers",
            baseline=before.answered,
            baseline_name=f"commit {BASELINE_COMMIT}",
            goal="5",
        )
        record(
            f"flood ({flood.name}): /healthz median latency",
            statistics.median(now.latencies) if now.latencies else float("nan"),
            "s",
            baseline=statistics.median(before.latencies) if before.latencies else None,
            baseline_name=f"commit {BASELINE_COMMIT}",
        )
        record(
            f"flood ({flood.name}): slowest /healthz ask (a timeout counts)",
            now.slowest,
            "s",
            baseline=before.slowest,
            baseline_name=f"commit {BASELINE_COMMIT}",
        )
        record(
            f"flood ({flood.name}): most sockets the collector held (sampled 3 s)",
            now.sockets_peak,
            "sockets",
            baseline=before.sockets_peak,
            baseline_name=f"commit {BASELINE_COMMIT}",
        )
        record(
            f"flood ({flood.name}): sockets the collector holds 3 s in",
            now.sockets_held,
            "sockets",
            baseline=before.sockets_held,
            baseline_name=f"commit {BASELINE_COMMIT}",
        )


def main() -> None:
    if sys.argv[1:2] == ["--case"]:
        print(json.dumps(run_case(sys.argv[2], Path(sys.argv[3]))))
        return
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-abuse-") as tmp:
        work = Path(tmp)
        if sys.argv[1:2] == ["--per-request"]:  # only the collector's RSS per request
            (work / "amp.body").write_bytes(_amplification_body())
            (work / "gzip.body").write_bytes(_members_body())
            _record_per_request(work)
            return
        if sys.argv[1:2] == ["--flood"]:  # only the floods
            _record_floods(work)
            return
        _print_pair("amplification: 15 million empty lists", "amp_old", "amp_new", work)
        _print_pair("largest accepted report: 20,000 packages", "large_loads", "large_new", work)
        members = f"gzip: a report + {EMPTY_MEMBERS} empty members"
        _print_pair(members, "gzip_old", "gzip_new_uncapped", work)
        _print_pair("gzip: the same body, default member cap", "gzip_old", "gzip_new", work)
        _record_per_request(work)
        _record_floods(work)


if __name__ == "__main__":
    main()
