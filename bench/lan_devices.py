"""Benchmark: the collector's LAN device view (server/read/lan.py) on a stored fleet.

A SQLite fleet is filled through the real ingest service: `--hosts` hosts in 10
agencies, one in `--every` sweeping its LAN with `--devices` devices (some of them the
agency's enrolled hosts, by MAC). Then, in the same run (medians of `--repeat`):

- `GET /api/v1/lan/devices`'s query for the whole province (`list_devices`), beside
  the baseline of reading the same hosts' latest facts with `load_facts` (the whole
  document of each report, every domain) and merging them the same way: what the
  view would cost without `fact_store.load_domains`;
- the metrics' `LanIndex.update` at the first refresh (every host read), with nothing
  changed, and with 1 % of the hosts re-reported (the usual case between refreshes).

    python bench/lan_devices.py [--hosts 2000] [--every 10] [--devices 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import median_seconds, record
from sqlalchemy import select

from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.ingest.service import IngestService, limits_of
from server.metrics.hoststate import load_snapshots
from server.metrics.lan import LanIndex
from server.read.lan import HostLan, list_devices, merge_all, sightings_of
from server.storage.database import Database, open_database
from server.storage.fact_store import load_facts
from server.storage.migrate import upgrade
from server.storage.models import Host, Report
from tests.server.helpers import RULES_DIR, body_of, iso, make_facts, new_token
from tests.server.read.lan_fleet import device, discovery, host_domain, port

NOW = datetime.now(UTC).replace(microsecond=0)


def mac_of(agency: int, index: int) -> str:
    return f"52:54:{agency:02x}:00:{index // 256:02x}:{index % 256:02x}"


def facts_of(agency: int, index: int, hosts_per_agency: int, sweeps: bool, devices: int,
             seq: int) -> dict[str, Any]:  # fmt: skip
    ip = f"10.{agency}.{index // 250}.{index % 250 + 1}"
    extra: dict[str, Any] = {}
    if sweeps:
        found = []
        for d in range(devices):
            if d % 10 == 0:  # one in ten is an enrolled host of the agency
                other = (index + d + 1) % hosts_per_agency
                found.append(device(f"10.{agency}.{other // 250}.{other % 250 + 1}",
                                    mac_of(agency, other)))  # fmt: skip
            else:
                found.append(device(f"10.{agency}.200.{d % 250 + 1}",
                                    f"00:11:32:{agency:02x}:{d // 256:02x}:{d % 256:02x}",
                                    port(23, "telnet"), port(445, "microsoft-ds")))  # fmt: skip
        extra["discovery"] = discovery(*found, swept_at=iso(NOW))
    return make_facts(
        agent_id=f"agent-{agency}-{index}",
        seq=seq,
        hostname=f"srv-{agency}-{index}",
        collected_at=NOW + timedelta(seconds=seq),
        host=host_domain(f"srv-{agency}-{index}", ip, mac_of(agency, index)),
        **extra,
    )


def naive_view(database: Database) -> int:
    """The baseline: every host's whole latest document, then the same merge."""
    with database.session() as session:
        hosts = []
        for host in session.scalars(select(Host)):
            report = session.get(Report, host.last_report_pk)
            assert report is not None
            facts = load_facts(session, report)
            interfaces = facts.get("host", {}).get("interfaces", [])
            macs = frozenset(i["mac"] for i in interfaces if i.get("mac"))
            ips = frozenset(
                a["address"] for i in interfaces for a in i["addresses"] if a["family"] == "ipv4"
            )
            sightings = (
                sightings_of(facts["discovery"], host.agent_id, host.label, host.last_collected_at)
                if "discovery" in facts
                else None
            )
            hosts.append(HostLan(host.agent_id, host.agency_id, host.label, macs, ips, sightings))
    return sum(len(devices) for devices in merge_all(hosts).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(url)
        database = open_database(url)
        config = ServerConfig(db_url=url, rules=(RULES_DIR,), agent_rate_burst=10**9)
        service = IngestService(database, load_server_policy(config), limits_of(config))
        per_agency = args.hosts // 10
        tokens: dict[tuple[int, int], str] = {}
        started = time.perf_counter()
        for agency in range(10):
            for index in range(per_agency):
                token = new_token(database, f"so-{agency}")
                tokens[(agency, index)] = token
                facts = facts_of(agency, index, per_agency, index % args.every == 0,
                                 args.devices, 1)  # fmt: skip
                service.ingest(service.authenticate(token), body_of(facts), None)
        print(f"seeded {args.hosts} hosts in {time.perf_counter() - started:.1f} s", flush=True)

        def view() -> int:
            with database.session() as session:
                return int(list_devices(session, limit=1000, offset=0)["total"])

        assert view() == naive_view(database)
        record(
            f"lan devices view, province, {args.hosts} hosts",
            median_seconds(view, args.repeat),
            "s",
            baseline=median_seconds(lambda: naive_view(database), args.repeat),
            baseline_name="load_facts of every host, same merge",
        )

        def first_refresh() -> None:
            LanIndex().update(database, load_snapshots(database))

        lan_index = LanIndex()
        snapshots = load_snapshots(database)
        lan_index.update(database, snapshots)
        unchanged = median_seconds(lambda: lan_index.update(database, snapshots), args.repeat)
        changed_count = max(1, args.hosts // 100)
        for agency, host in list(tokens)[:changed_count]:
            facts = facts_of(agency, host, per_agency, host % args.every == 0, args.devices, 2)
            service.ingest(service.authenticate(tokens[(agency, host)]), body_of(facts), None)
        after = load_snapshots(database)
        one_percent = median_seconds(lambda: lan_index.update(database, after), 1)
        first = median_seconds(first_refresh, args.repeat)
        record("canhgac_lan_devices refresh, 1 % of hosts changed", one_percent, "s",
               baseline=first, baseline_name="first refresh, every host read")  # fmt: skip
        record("canhgac_lan_devices refresh, nothing changed", unchanged, "s",
               baseline=first, baseline_name="first refresh, every host read")  # fmt: skip
        database.dispose()


if __name__ == "__main__":
    main()
