"""Benchmark: LAN discovery of a routed subnet, beside nmap on the same targets.

Builds the routed test network (tests/agent/discovery/test_routed.py: the scanner,
a router, a /24 behind it with four hosts, one ignoring ICMP echo), then, inside the
scanner's namespace and in the same run, measures the wall time and the CPU time
(the child's rusage) of:

- `canhgac-agent discover` sweeping only the routed /24 (ICMP echo, TCP SYN 443,
  TCP ACK 80, two passes, then the SYN probe of the live hosts), against
  `nmap -n -sS -T4 -PE -PS443 -PA80` over the same /24 and ports (the same probes:
  host discovery, then the port scan);
- the agent's process includes its start and scapy's import (about 0.4 s here).

Medians of --repeat runs; ratio = agent / nmap. Needs root, ip, nft, nmap, sysctl.
Nothing outside the namespaces is probed; they are removed at the end.

    sudo .venv/bin/python bench/discovery_routed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record, skip  # noqa: E402

from tests.agent.discovery.test_routed import PORTS, routed_lan  # noqa: E402

AGENT = str(ROOT / ".venv" / "bin" / "canhgac-agent")


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, the child's CPU seconds, its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        skip("needs root (network namespaces)")
    with tempfile.TemporaryDirectory() as directory, routed_lan(Path(directory)) as net:
        config = Path(directory) / "agent.yaml"
        # The attached sweep limited to a /30 (the router alone): the routed /24 is measured.
        link = f"{net.lan.network_address}/30"
        discovery = {"subnets": [link], "routed_subnets": [str(net.far)], "ports": list(PORTS)}
        config.write_text(json.dumps({"agent": {"discovery": discovery}}))
        ports = ",".join(str(p) for p in PORTS)
        ours, theirs = [], []
        for _ in range(args.repeat):
            agent = net.exec(AGENT, "discover", "--config", str(config), "--format", "json")
            wall, cpu, out = timed(agent)
            found = {d["ip"] for d in json.loads(out)["devices"] if d["found_by"] != "arp"}
            ours.append((wall, cpu))
            nmap = net.exec("nmap", "-n", "-sS", "-T4", "-PE", "-PS443", "-PA80", "-p", ports,
                            "-oX", "-", str(net.far))  # fmt: skip
            n_wall, n_cpu, xml = timed(nmap)
            theirs.append((n_wall, n_cpu))
            up = re.search(r'<hosts up="(\d+)"', xml)
            assert up is not None and int(up[1]) == len(found), (found, up)  # same hosts
        wall = statistics.median(w for w, _ in ours)
        cpu = statistics.median(c for _, c in ours)
        n_wall = statistics.median(w for w, _ in theirs)
        n_cpu = statistics.median(c for _, c in theirs)
        print(f"routed /24 behind a router: {len(found)} live hosts, {len(PORTS)} ports")
        record("agent routed discovery wall (process)", wall, "s",
               baseline=n_wall, baseline_name="nmap -sS -T4 -PE -PS443 -PA80")  # fmt: skip
        record("agent routed discovery CPU (process)", cpu, "s",
               baseline=n_cpu, baseline_name="nmap, same targets")  # fmt: skip


if __name__ == "__main__":
    main()
