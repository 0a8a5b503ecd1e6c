"""Benchmark: the collector's ingest, end to end, on SQLite and PostgreSQL.

A real `canhgac-server serve` (uvicorn, one process) on loopback, the built-in rule
packs, many simulated agents enrolled through `POST /api/v1/enroll`, each posting
gzip reports of a realistic size (about 1,500 packages, 20 certificates, 60
listeners). Two phases per database, each bounded in time:

- "changed": every report's facts differ (a listener moves), so every report is
  evaluated against all shipped rules and its changed domain stored;
- "unchanged": the facts are the same as the host's current ones, so nothing but
  the report's envelope is stored and evaluation is skipped.

It prints sustained reports/s and p50/p99 latency, then the bytes stored per host per
day (96 reports a day) for an unchanged host and a typical one, measured on SQLite
by summing the stored column sizes.

PostgreSQL runs when CANHGAC_BENCH_PG_URL (or CANHGAC_TEST_PG_URL) names a server
whose role may CREATE DATABASE; a throw-away database is created and dropped.

    python bench/ingest.py [--seconds 15] [--agents 200] [--clients 16]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# `python bench/ingest.py` puts bench/ first on sys.path; the checkout's packages and
# the collector helper the tests use (tests.collector_process) are imported from ROOT.
sys.path.insert(0, str(ROOT))

from server.auth.agent_tokens import create_token  # noqa: E402
from server.clock import utc_now  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.evaluation.loaded_policy import load_server_policy  # noqa: E402
from server.ingest.service import IngestService, limits_of  # noqa: E402
from server.storage.database import open_database  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from tests.collector_process import running_collector  # noqa: E402


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


BOOTED_BEFORE = timedelta(days=3)


def facts(agent: int, variant: int, now: datetime) -> dict[str, Any]:
    """A realistic document; `variant` changes one listener (a changed report)."""
    packages = [
        {
            "name": f"lib{agent % 7}-pkg{i}",
            "version": f"{i % 9}.{i % 13}.{i % 5}-{i % 3}+deb12u1",
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
        self.now = now
        self._templates: dict[int, str] = {}

    def body(self, changed: bool) -> bytes:
        if changed:
            self.variant += 1
        variant = self.variant % 50
        template = self._templates.get(variant)
        if template is None:
            template = json.dumps(facts(self.index, variant, self.now))
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
        return gzip.compress(raw.encode(), compresslevel=1)


def cli(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "canhgac-server"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"canhgac-server {args[0]} failed: {done.stderr}")
    return done.stdout.strip()


@contextmanager
def collector(db_url: str, workdir: Path) -> Iterator[tuple[str, Path]]:
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
    with running_collector(
        "--config",
        str(config),
        "--no-migrate",
        "--log-level",
        "warning",
        log_dir=workdir,
        timeout=60,
    ) as served:
        yield served.url, config


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


def load(
    url: str, agents: list[Agent], clients: int, seconds: float, changed: bool
) -> tuple[int, list[float], int]:
    """Post for `seconds` from `clients` threads; (reports, latencies s, errors)."""
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
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    return int(len(latencies) / took * 1000), latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run_database(name: str, db_url: str, args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="canhgac-bench-") as tmp,
        collector(db_url, Path(tmp)) as (url, config),
    ):
        agents = enrol_agents(url, config, args.agents)
        load(url, agents, args.clients, 3, changed=True)  # warm-up: hosts exist
        for phase, changed in (("changed", True), ("unchanged", False)):
            rate_milli, latencies, errors = load(url, agents, args.clients, args.seconds, changed)
            print(
                f"{name:10} {phase:9}  {rate_milli / 1000:7.1f} reports/s  "
                f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
                f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms  "
                f"({len(latencies)} reports, {errors} errors, {args.clients} clients)",
                flush=True,
            )


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


def stored_bytes(engine: Any, sizes: dict[str, str]) -> int:
    with engine.connect() as connection:
        return sum(
            int(
                connection.execute(text(f"SELECT coalesce(sum({expr}), 0) FROM {table}")).scalar()
                or 0
            )
            for table, expr in sizes.items()
        )


def storage_per_day() -> None:
    """Bytes stored per host per day (96 reports), measured in-process on SQLite."""
    sizes = {
        "reports": "length(facts) + coalesce(length(domains), 0) + length(report_id) + 64",
        "facts_blobs": "length(content) + 64 + 64",
        "rule_results": "length(items) + length(errors) + length(rule_id) + 32",
        "findings": "length(item_key) + length(evidence) + length(message) + 96",
    }
    for scenario in ("unchanged", "typical"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/canhgac.db"
            upgrade(url)
            database = open_database(url)
            config = ServerConfig(db_url=url)
            service = IngestService(database, load_server_policy(config), limits_of(config))
            with database.write() as session:
                _, token = create_token(session, "bench", None, utc_now)
            credential = service.authenticate(token)
            agent = Agent(0, token, datetime.now(UTC))

            service.ingest(credential, agent.body(False), "gzip")  # day 0: the first report
            start = stored_bytes(database.engine, sizes)
            for report in range(96):
                # typical: a listener changes 4 times a day; certificates' days_left and
                # pending updates change once a day (modelled by one change at report 0)
                changed = scenario == "typical" and report % 24 == 0
                service.ingest(credential, agent.body(changed), "gzip")
            day = stored_bytes(database.engine, sizes) - start
            database.dispose()
        print(
            f"storage    {scenario:9}  {day / 1024:8.1f} KiB per host per day (96 reports;"
            f" a whole report is {len(gzip.decompress(agent.body(False))) / 1024:.0f} KiB"
            f" -> {96 * len(gzip.decompress(agent.body(False))) / 1024 / 1024:.1f} MiB/day"
            " if stored whole)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--skip-storage", action="store_true")
    args = parser.parse_args()
    if not args.skip_storage:
        storage_per_day()
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-db-") as tmp:
        run_database("sqlite", f"sqlite:///{tmp}/canhgac.db", args)
    pg = os.environ.get("CANHGAC_BENCH_PG_URL") or os.environ.get("CANHGAC_TEST_PG_URL")
    if pg:
        with pg_database(pg) as url:
            run_database("postgresql", url, args)
    else:
        print("postgresql skipped: set CANHGAC_BENCH_PG_URL", flush=True)


if __name__ == "__main__":
    main()
