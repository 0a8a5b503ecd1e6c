"""Benchmark: the collector's ingest, end to end, beside the stack's floor.

A real `canhgac-server serve` on loopback, the built-in rule packs, many simulated
agents enrolled through `POST /api/v1/enroll`, each posting gzip reports of a
realistic size (about 1,500 packages, 20 certificates, 60 listeners). In the same
run, the same clients post the same bodies to the minimal stack: a FastAPI + uvicorn
application that gunzips the body, parses the JSON and inserts it in one SQLite
transaction (WAL, synchronous=FULL like the collector) and answers: the floor any
collector on this stack pays per report. Two phases each, bounded in time:

- "changed": every report's facts differ (a listener moves), so every report is
  evaluated against all shipped rules and its changed domain stored;
- "unchanged": the facts are the same as the host's current ones.

Printed per phase: sustained reports/s, p50/p99 latency, and the server's CPU per
report (utime + stime of the server process and its children, from /proc), each
beside the minimal stack's and as a ratio. `--workers 1,2,4` runs the collector with
that many worker processes (`serve --workers`).

Then the bytes stored per host per day (96 reports, one every 15 minutes) for an
unchanged host, one listener changing at every report, one package version
changing at every report and a real agent's document (tests/data, 32 domains)
unchanged, counted as the database's used pages (SQLite: dbstat; PostgreSQL:
pg_total_relation_size of every table), beside storing each document whole and
gzipped, with the tables (SQLite: b-trees) that grew most. `--profile` prints where
the collector's CPU goes instead (cProfile over the ingest core, in-process, both
paths).

PostgreSQL runs when CANHGAC_BENCH_PG_URL (or CANHGAC_TEST_PG_URL) names a server
whose role may CREATE DATABASE; a throw-away database is created and dropped.

    python bench/ingest.py [--seconds 15] [--agents 200] [--clients 16] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gzip
import json
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# `python bench/ingest.py` puts bench/ first on sys.path; the checkout's packages and
# the collector helper the tests use (tests.collector_process) are imported from ROOT.
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402  (bench/, the script's own folder)

from server.auth.agent_tokens import create_token  # noqa: E402
from server.clock import utc_now  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.evaluation.loaded_policy import load_server_policy  # noqa: E402
from server.ingest.service import IngestService, limits_of  # noqa: E402
from server.storage.database import Database, open_database  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from tests.collector_process import running_collector  # noqa: E402
from tests.support import free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPORTS_PER_DAY = 96


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


BOOTED_BEFORE = timedelta(days=3)


def facts(agent: int, variant: int, now: datetime, package: int = 0) -> dict[str, Any]:
    """A realistic document; `variant` changes one listener, `package` the version of
    one package (a changed report)."""
    packages = [
        {
            "name": f"lib{agent % 7}-pkg{i}",
            "version": f"{i % 9}.{i % 13}.{i % 5}-{i % 3}+deb12u{1 + (package if i == 700 else 0)}",
            "architecture": "amd64",
            "source": f"src{i // 4}",
        }
        for i in range(1500)
    ]
    certificates = [
        {
            "location": f"/etc/ssl/certs/site{i}.pem#0",
            "source": "file",
            "path": f"/etc/ssl/certs/site{i}.pem",
            "chain_position": 0,
            "subject": f"CN=site{i}.so-{agent % 20}.gov.vn",
            "issuer": "CN=Province CA",
            "serial": f"{agent:08x}{i:08x}",
            "san": [f"site{i}.so-{agent % 20}.gov.vn"],
            "not_before": iso(now - timedelta(days=300)),
            "not_after": iso(now + timedelta(days=20 + i * 20)),
            "days_left": 20 + i * 20,
            "key_type": "RSA",
            "key_bits": 2048,
            "signature_algorithm": "sha256WithRSAEncryption",
            "signature_hash": "sha256",
            "self_signed": False,
            "is_ca": False,
            "fingerprint_sha256": f"{agent:032x}{i:032x}",
        }
        for i in range(20)
    ]
    listening = [
        {
            "protocol": "tcp" if i % 3 else "udp",
            "family": "ipv4",
            "address": ("0.0.0.0", "127.0.0.1", "10.0.0.5")[i % 3],
            "port": 1000 + i + (variant % 50 if i == 0 else 0),
            "exposure": ("all", "loopback", "specific")[i % 3],
            "pid": 100 + i,
            "process": f"svc{i}",
            "user": "root",
        }
        for i in range(60)
    ]
    return {
        "schema": "canhgac.facts/v1",
        "report_id": "REPORT_ID",
        "agent_id": f"bench-agent-{agent:05d}",
        "seq": 0,
        "seq_epoch": "bench",
        "collected_at": "COLLECTED_AT",
        "agent_version": "0.1.0",
        "host": {
            "hostname": f"host{agent:05d}",
            "os": {
                "id": "debian",
                "name": "Debian GNU/Linux",
                "family": "debian",
                "pretty_name": "Debian GNU/Linux 12 (bookworm)",
                "version_id": "12",
            },
            "kernel": {"release": "6.1.0-28-amd64"},
            "architecture": "x86_64",
            # as a real agent reports them: the age changes at every report
            "boot_time": iso(now - BOOTED_BEFORE),
            "uptime_seconds": "UPTIME",
        },
        "packages": {"manager": "dpkg", "count": len(packages), "items": packages},
        "updates": {
            "manager": "apt",
            "pending": [],
            "pending_count": 0,
            "security_count": 0,
            "running_kernel": "6.1.0-28-amd64",
        },
        "certificates": certificates,
        "listening": listening,
        "errors": [],
    }


class Agent:
    def __init__(self, index: int, token: str, now: datetime) -> None:
        self.index = index
        self.token = token
        self.seq = 0
        self.variant = 0
        self.package = 0
        self.now = now
        self._templates: dict[tuple[int, int], str] = {}

    def body(self, changed: bool | str, level: int = 1) -> bytes:
        """The next report; `changed`: True or "listener" moves a listener, "package"
        changes one package's version, False sends the same facts again."""
        if changed is True or changed == "listener":
            self.variant += 1
        elif changed == "package":
            self.package += 1
        variant = (self.variant % 50, self.package % 50)
        template = self._templates.get(variant)
        if template is None:
            template = json.dumps(facts(self.index, variant[0], self.now, variant[1]))
            self._templates[variant] = template
        self.seq += 1
        moment = datetime.now(UTC) - timedelta(seconds=1)
        collected = iso(moment)
        uptime = int((moment - (self.now - BOOTED_BEFORE)).total_seconds())
        raw = (
            template.replace('"REPORT_ID"', json.dumps(str(uuid.uuid4())))
            .replace('"UPTIME"', str(uptime))
            .replace('"seq": 0', f'"seq": {self.seq}')
            .replace('"COLLECTED_AT"', json.dumps(collected))
        )
        return gzip.compress(raw.encode(), compresslevel=level)


def cli(*args: str) -> str:
    # This checkout's code, as the collector runs it (running_collector does the same).
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [str(BIN / "canhgac-server"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode != 0:
        raise SystemExit(f"canhgac-server {args[0]} failed: {done.stderr}")
    return done.stdout.strip()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name may hold spaces and parentheses: fields follow the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += times.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


@contextmanager
def collector(db_url: str, workdir: Path, workers: int = 1) -> Iterator[tuple[str, Path, int]]:
    config = workdir / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "db_url": db_url,
                    "agent_rate_per_minute": 1e6,
                    "agent_rate_burst": 1_000_000,
                    "metrics_refresh_seconds": 60,
                    "policy_check_seconds": 3600,
                }
            }
        ),
        "utf-8",
    )
    cli("db", "upgrade", "--config", str(config))
    extra = ["--workers", str(workers)] if workers > 1 else []
    with running_collector(
        "--config",
        str(config),
        "--no-migrate",
        "--log-level",
        "warning",
        *extra,
        log_dir=workdir,
        timeout=60,
    ) as served:
        yield served.url, config, served.process.pid


def minimal_app(db_path: str) -> FastAPI:
    """The stack's floor: gunzip, parse, insert in one transaction, answer."""
    app = FastAPI()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        found: sqlite3.Connection | None = getattr(local, "connection", None)
        if found is None:
            found = sqlite3.connect(db_path, isolation_level=None, timeout=30)
            found.execute("PRAGMA journal_mode=WAL")
            found.execute("PRAGMA synchronous=FULL")
            local.connection = found
        return found

    with sqlite3.connect(db_path) as setup:
        setup.execute(
            "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY,"
            " report_id TEXT UNIQUE, agent_id TEXT, seq INTEGER, body TEXT)"
        )

    def store(body: bytes) -> None:
        document = json.loads(gzip.decompress(body))
        db = connection()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO reports (report_id, agent_id, seq, body) VALUES (?, ?, ?, ?)",
            (document["report_id"], document["agent_id"], document["seq"], json.dumps(document)),
        )
        db.execute("COMMIT")

    @app.post("/api/v1/reports")
    async def reports(request: Request) -> dict[str, str]:
        await run_in_threadpool(store, await request.body())
        return {"status": "accepted"}

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok")

    return app


@contextmanager
def minimal_server(workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-minimal", str(port), str(workdir / "minimal.db")],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "minimal.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the minimal stack did not start: {workdir / 'minimal.log'}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def enrol_agents(url: str, config: Path, count: int) -> list[Agent]:
    cli("agency", "add", "bench", "--name", "Benchmark agency", "--config", str(config))
    secret = cli("agency", "enrol-secret", "bench", "--config", str(config))
    now = datetime.now(UTC)
    agents = []
    with requests.Session() as session:
        for index in range(count):
            response = session.post(
                f"{url}/api/v1/enroll",
                timeout=30,
                json={"agent_id": f"bench-agent-{index:05d}", "hostname": f"host{index:05d}"},
                headers={"Authorization": f"Bearer {secret}"},
            )
            response.raise_for_status()
            agents.append(Agent(index, response.json()["token"], now))
    return agents


class Phase:
    """One load phase's outcome."""

    def __init__(self, reports: int, took: float, latencies: list[float], errors: int, cpu: float):
        self.reports = reports
        self.rate = reports / took
        self.p50 = percentile(latencies, 0.5)
        self.p99 = percentile(latencies, 0.99)
        self.errors = errors
        self.cpu_per_report = cpu / reports if reports else 0.0


def warm(url: str, agents: list[Agent], clients: int) -> None:
    """One report of every agent (from `clients` threads), so that the phases measure
    the reports of known hosts, not first reports (which store everything)."""

    def client(mine: list[Agent]) -> None:
        session = requests.Session()
        for agent in mine:
            response = session.post(
                f"{url}/api/v1/reports",
                data=agent.body(True),
                timeout=60,
                headers={
                    "Authorization": f"Bearer {agent.token}",
                    "Content-Encoding": "gzip",
                    "Content-Type": "application/json",
                },
            )
            response.raise_for_status()

    threads = [threading.Thread(target=client, args=(agents[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def load(
    url: str, pid: int, agents: list[Agent], clients: int, seconds: float, changed: bool
) -> Phase:
    """Post for `seconds` from `clients` threads, the server's CPU counted meanwhile."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    per_client = [agents[i::clients] for i in range(clients)]

    def client(mine: list[Agent]) -> None:
        nonlocal errors
        session = requests.Session()
        turn = 0
        while time.monotonic() < deadline:
            agent = mine[turn % len(mine)]
            turn += 1
            body = agent.body(changed)
            start = time.perf_counter()
            response = session.post(
                f"{url}/api/v1/reports",
                data=body,
                timeout=60,
                headers={
                    "Authorization": f"Bearer {agent.token}",
                    "Content-Encoding": "gzip",
                    "Content-Type": "application/json",
                },
            )
            elapsed = time.perf_counter() - start
            with lock:
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors += 1

    threads = [threading.Thread(target=client, args=(m,)) for m in per_client if m]
    cpu_before = process_cpu(pid)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    cpu = process_cpu(pid) - cpu_before
    return Phase(len(latencies), took, latencies, errors, cpu)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def show(name: str, phase: Phase, base: Phase | None, clients: int) -> None:
    ratio = ""
    if base is not None and base.cpu_per_report:
        ratio = (
            f"  = {phase.cpu_per_report / base.cpu_per_report:4.1f}x the floor's CPU,"
            f" {phase.rate / base.rate:4.2f}x its rate"
        )
    print(
        f"{name:34} {phase.rate:7.1f} reports/s  p50 {phase.p50 * 1000:6.1f} ms"
        f"  p99 {phase.p99 * 1000:6.1f} ms  CPU {phase.cpu_per_report * 1000:5.1f} ms/report"
        f"  ({phase.reports} reports, {phase.errors} errors, {clients} clients){ratio}",
        flush=True,
    )
    record(
        f"ingest {name} reports/s",
        phase.rate,
        "reports/s",
        baseline=base.rate if base else None,
        baseline_name="minimal FastAPI+SQLite",
    )
    record(
        f"ingest {name} server CPU",
        phase.cpu_per_report * 1000,
        "ms/report",
        baseline=base.cpu_per_report * 1000 if base else None,
        baseline_name="minimal FastAPI+SQLite",
        goal="within 2x of the minimal stack",
    )


def run_minimal(args: argparse.Namespace) -> dict[str, Phase]:
    """The floor, with the same agents' bodies and clients (no enrolment: no auth)."""
    now = datetime.now(UTC)
    agents = [Agent(i, "none", now) for i in range(args.agents)]
    phases = {}
    with (
        tempfile.TemporaryDirectory(prefix="canhgac-bench-minimal-") as tmp,
        minimal_server(Path(tmp)) as (url, pid),
    ):
        load(url, pid, agents, args.clients, 3, changed=True)  # warm-up
        for phase, changed in (("changed", True), ("unchanged", False)):
            phases[phase] = load(url, pid, agents, args.clients, args.seconds, changed)
            show(f"minimal stack (sqlite) {phase}", phases[phase], None, args.clients)
    return phases


def run_database(
    name: str, db_url: str, args: argparse.Namespace, workers: int, floor: dict[str, Phase]
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="canhgac-bench-") as tmp,
        collector(db_url, Path(tmp), workers) as (url, config, pid),
    ):
        agents = enrol_agents(url, config, args.agents)
        warm(url, agents, args.clients)  # every host exists: "changed" is not "first"
        load(url, pid, agents, args.clients, 3, changed=True)  # warm-up
        for phase, changed in (("changed", True), ("unchanged", False)):
            result = load(url, pid, agents, args.clients, args.seconds, changed)
            show(f"{name} {workers}w {phase}", result, floor.get(phase), args.clients)


@contextmanager
def pg_database(base_url: str) -> Iterator[str]:
    base = make_url(base_url)
    name = f"canhgac_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def used_bytes(database: Database) -> int:
    """The database's used pages, indexes included: SQLite's dbstat (the pages of
    every b-tree; free pages excluded), PostgreSQL's pg_total_relation_size."""
    with database.engine.connect() as connection:
        if database.engine.dialect.name == "sqlite":
            query = "SELECT coalesce(sum(pgsize), 0) FROM dbstat"
        else:
            query = (
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        return int(connection.execute(text(query)).scalar() or 0)


def vacuum(database: Database) -> None:
    """PostgreSQL: what autovacuum does over a day (the host row, updated at every
    report, would otherwise count each dead version as stored)."""
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text("VACUUM"))


def in_process(url: str) -> tuple[IngestService, Any, Database]:
    upgrade(url)
    database = open_database(url)
    config = ServerConfig(db_url=url)
    service = IngestService(database, load_server_policy(config), limits_of(config))
    with database.write() as session:
        _, token = create_token(session, "bench", None, utc_now)
    return service, service.authenticate(token), database


def used_by_table(database: Database) -> dict[str, int]:
    """Used bytes per b-tree (SQLite: each table and index) or per table with its
    indexes and TOAST (PostgreSQL): where a day's bytes went."""
    with database.engine.connect() as connection:
        if database.engine.dialect.name == "sqlite":
            query = "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
        else:
            query = (
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        return {str(k): int(v) for k, v in connection.execute(text(query))}


REAL_DOCUMENT = ROOT / "tests" / "data" / "rules" / "engine_golden" / "machine.json"


class RealAgent:
    """A real agent's document (a Debian 12 machine: 32 domains, 922 packages, its
    collectors' errors) sent again unchanged: new id, seq and collection time."""

    def __init__(self) -> None:
        self.template = json.loads(REAL_DOCUMENT.read_text())
        self.seq = 0

    def body(self, changed: bool | str, level: int = 1) -> bytes:
        self.seq += 1
        document = {
            **self.template,
            "report_id": str(uuid.uuid4()),
            "seq": self.seq,
            "collected_at": iso(datetime.now(UTC) - timedelta(seconds=1)),
        }
        return gzip.compress(json.dumps(document).encode(), compresslevel=level)


def storage_per_day(name: str, database_url: Callable[[], Any]) -> None:
    """Used bytes per host per day (96 reports) for four hosts, beside whole gzipped
    documents (gzip level 6, what a file archive would do), with the tables that
    grew most."""
    for scenario, changed in (
        ("unchanged", False),
        ("listener", "listener"),
        ("package", "package"),
        ("real-unch", False),  # REAL_DOCUMENT, unchanged
    ):
        with database_url() as url:
            service, credential, database = in_process(url)
            agent: Agent | RealAgent = (
                RealAgent()
                if scenario == "real-unch"
                else Agent(0, "in-process", datetime.now(UTC))
            )
            service.ingest(credential, agent.body(False), "gzip")  # day 0: the first report
            service.ingest(credential, agent.body(changed), "gzip")
            vacuum(database)
            start, tables = used_bytes(database), used_by_table(database)
            whole = 0
            for _ in range(REPORTS_PER_DAY):
                body = agent.body(changed)
                whole += len(gzip.compress(gzip.decompress(body)))
                service.ingest(credential, body, "gzip")
                vacuum(database)
            day = used_bytes(database) - start
            grew = {k: v - tables.get(k, 0) for k, v in used_by_table(database).items()}
            database.dispose()
        print(
            f"storage {name:10} {scenario:9} {day / 1024:8.1f} KiB per host per day"
            f"   whole gzipped documents {whole / 1024:8.1f} KiB"
            f"   = {day / whole:5.3f}x",
            flush=True,
        )
        top = sorted(((v, k) for k, v in grew.items() if v > 0), reverse=True)[:4]
        print("    of which " + ", ".join(f"{k} {v / 1024:.1f} KiB" for v, k in top), flush=True)
        record(
            f"storage {name} {scenario} per host per day",
            day / 1024,
            "KiB",
            baseline=whole / 1024,
            baseline_name="whole gzipped documents",
            goal="unchanged < 25 KB, changing < 200 KB",
        )


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-db-") as tmp:
        yield f"sqlite:///{tmp}/canhgac.db"


def profile(reports: int) -> None:
    """Where the ingest core's CPU goes, per path (cProfile, in-process, SQLite)."""
    with sqlite_url() as url:
        service, credential, database = in_process(url)
        agent = Agent(0, "in-process", datetime.now(UTC))
        service.ingest(credential, agent.body(False), "gzip")
        # The first report bound the token: the server authenticates each request, so
        # later ones come with the bound credential.
        credential = dataclasses.replace(credential, agent_id=f"bench-agent-{0:05d}")
        for phase, changed in (("unchanged", False), ("changed", True)):
            bodies = [agent.body(changed) for _ in range(reports)]
            cpu = []
            profiler = cProfile.Profile()
            for body in bodies:
                start = time.process_time()
                profiler.enable()
                service.ingest(credential, body, "gzip")
                profiler.disable()
                cpu.append(time.process_time() - start)
            print(
                f"== profile {phase}: median {statistics.median(cpu) * 1000:.1f} ms CPU"
                f" per report in-process ({reports} reports)",
                flush=True,
            )
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(18)
            stats.sort_stats("cumulative").print_stats(r"server|rules", 25)
        database.dispose()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-minimal":
        uvicorn.run(
            minimal_app(sys.argv[3]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning"
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--skip-storage", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--profile", type=int, metavar="REPORTS", help="profile and exit")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return
    pg = os.environ.get("CANHGAC_BENCH_PG_URL") or os.environ.get("CANHGAC_TEST_PG_URL")
    if not args.skip_storage:
        storage_per_day("sqlite", sqlite_url)
        if pg:
            storage_per_day("postgresql", lambda: pg_database(pg))
    if args.skip_load:
        return
    floor = run_minimal(args)
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix="canhgac-bench-db-") as tmp:
            run_database("sqlite", f"sqlite:///{tmp}/canhgac.db", args, workers, floor)
        if pg:
            with pg_database(pg) as url:
                run_database("postgresql", url, args, workers, floor)
        else:
            print("postgresql skipped: set CANHGAC_BENCH_PG_URL", flush=True)


if __name__ == "__main__":
    main()
