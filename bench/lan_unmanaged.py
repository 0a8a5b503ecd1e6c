"""Benchmark: what LAN-UNMANAGED-DEVICE's managed set costs at evaluation.

A SQLite database is filled through the real ingest service with one agency of
`--hosts` hosts (each with its `host.interfaces`); one more host sweeps the LAN and
sees `--devices` devices, one in ten of them an enrolled host. Then, in the same run
(medians of `--repeat`), the discovering host's evaluation with the lan-discovery pack
(`ServerPolicy.evaluate`, every rule evaluated, as on a changed report), with the
collector's `lan_managed` domain (the agency's hosts read from the database and
matched, server/evaluation/lan.py) beside the baseline of the same pack without it
(`lan` None: the risky-service rules alone).

The same, for the whole ingest of the discoverer's changed report (parsing, storing,
findings) with and without the domain.

    python bench/lan_unmanaged.py [--hosts 500] [--devices 100] [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import median_seconds, record

from server.config import ServerConfig
from server.evaluation.lan import DOMAIN, ManagedLan
from server.evaluation.loaded_policy import load_server_policy
from server.ingest.service import IngestService, limits_of
from server.storage.database import open_database
from server.storage.migrate import upgrade
from tests.server.helpers import RULES_DIR, body_of, iso, make_facts, new_token
from tests.server.read.lan_fleet import device, discovery, host_domain, port

PACK = Path(__file__).resolve().parents[1] / "rules" / "packs" / "lan-discovery.yaml"
AGENCY = "so-bench"
NOW = datetime.now(UTC).replace(microsecond=0)


def mac_of(index: int) -> str:
    return f"52:54:00:00:{index // 256:02x}:{index % 256:02x}"


def ip_of(index: int) -> str:
    return f"10.1.{index // 250}.{index % 250 + 1}"


def sweep(devices: int, hosts: int) -> dict[str, Any]:
    found = []
    for d in range(devices):
        if d % 10 == 0:  # one in ten is an enrolled host
            found.append(device(ip_of(d % hosts), mac_of(d % hosts)))
        else:
            mac = f"00:11:32:00:{d // 256:02x}:{d % 256:02x}"
            found.append(device(f"10.1.200.{d % 250 + 1}", mac, port(80, "http")))
    open_ports = [  # as the agent lists them for the risky-service rules
        {"ip": f["ip"], "mac": f["mac"], "vendor": f["vendor"], "port": p["port"],
         "protocol": p["protocol"], "service": p["service"], "found_by": p["found_by"]}
        for f in found for p in f["ports"]
    ]  # fmt: skip
    return discovery(*found, complete=True, open_ports=open_ports, swept_at=iso(NOW))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(url)
        database = open_database(url)
        seed = ServerConfig(db_url=url, rules=(RULES_DIR,), agent_rate_burst=10**9)
        service = IngestService(database, load_server_policy(seed), limits_of(seed))
        started = time.perf_counter()
        for index in range(args.hosts):
            facts = make_facts(
                agent_id=f"agent-{index}",
                hostname=f"srv-{index}",
                host=host_domain(f"srv-{index}", ip_of(index), mac_of(index)),
            )
            token = new_token(database, AGENCY)
            service.ingest(service.authenticate(token), body_of(facts), None)
        print(f"seeded {args.hosts} hosts in {time.perf_counter() - started:.1f} s", flush=True)

        loaded = load_server_policy(ServerConfig(db_url=url, rules=(PACK,)))
        with_lan = replace(loaded, lan=ManagedLan(url, database))
        without = replace(loaded, lan=None)
        facts = make_facts(
            agent_id="agent-scan",
            hostname="scan01",
            host=host_domain("scan01", "10.1.250.1", "52:54:00:ff:00:01"),
            discovery=sweep(args.devices, args.hosts),
        )
        today = NOW.date()
        outcome = with_lan.evaluate(facts, AGENCY, "scan01", "agent-scan", today)
        (result,) = [r for r in outcome.results if r.rule_id == "LAN-UNMANAGED-DEVICE"]
        unmanaged = args.devices - len(range(0, args.devices, 10))
        assert result.status.value == "fail" and len(result.items) == unmanaged, result
        assert with_lan.lan is not None
        enriched = with_lan.lan.enrich(facts, AGENCY, "agent-scan")
        assert enriched[DOMAIN]["enrolled_hosts"] == args.hosts + 1

        def judged(policy: Any) -> None:
            policy.evaluate(facts, AGENCY, "scan01", "agent-scan", today)

        baseline = median_seconds(lambda: judged(without), args.repeat)
        record(
            f"discovering host's evaluation, lan-discovery pack, {args.hosts} hosts,"
            f" {args.devices} devices",
            median_seconds(lambda: judged(with_lan), args.repeat),
            "s",
            baseline=baseline,
            baseline_name="same pack without lan_managed",
        )
        # The whole ingest of the discoverer's changed report (a new sweep each time).
        token = new_token(database, AGENCY)
        bodies = iter(
            body_of(
                make_facts(
                    agent_id="agent-scan",
                    seq=seq,
                    hostname="scan01",
                    collected_at=NOW + timedelta(seconds=seq),
                    host=facts["host"],
                    discovery=facts["discovery"] | {"swept_at": iso(NOW + timedelta(seconds=seq))},
                )
            )
            for seq in range(1, 4 * args.repeat + 3)
        )

        def ingest(policy: Any) -> None:
            service.policy = policy
            service.ingest(service.authenticate(token), next(bodies), None)

        ingest(with_lan)  # the host's first report: created, not measured
        baseline = median_seconds(lambda: ingest(without), args.repeat)
        record(
            f"discovering host's changed report, whole ingest, {args.hosts} hosts,"
            f" {args.devices} devices",
            median_seconds(lambda: ingest(with_lan), args.repeat),
            "s",
            baseline=baseline,
            baseline_name="same pack without lan_managed",
        )
        database.dispose()


if __name__ == "__main__":
    main()
