"""Benchmark: LAN discovery on a namespace LAN, beside nmap on the same targets.

Builds the test LAN (tests/agent/discovery/netlan.py: a /24 in network namespaces,
six hosts with listeners, one filtered port), then, inside the scanner's namespace
and in the same run, measures wall and CPU time (the measuring process's own
`time.process_time`, or the child's rusage for nmap) of:

- the agent's ARP sweep of the /24 (two passes) against `nmap -sn -n`;
- the agent's SYN probe of the live hosts against `nmap -sS -T4 -n -Pn` on the same
  hosts and ports;
- the whole `canhgac-agent discover` process (wall, CPU, peak RSS).

The agent runs at its default packets-per-second cap and at a higher one (--pps).
Figures are medians over --repeat runs; ratios are agent / nmap. Needs root, ip, nft,
nmap. Nothing outside the namespaces is ever probed; they are removed at the end.

    sudo .venv/bin/python bench/discovery.py [--repeat 3] [--pps 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record, skip  # noqa: E402

from agent.discovery.config import DEFAULT_PPS  # noqa: E402
from tests.agent.discovery.netlan import Lan, lan  # noqa: E402
from tests.agent.discovery.test_lan import PORTS, SPECS  # noqa: E402

AGENT = str(ROOT / ".venv" / "bin" / "canhgac-agent")
# Run inside the scanner's namespace: scapy imported first (its import is timed apart),
# then each phase timed on its own.
PHASES = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import scapy.layers.l2, scapy.layers.inet, scapy.sendrecv
t1, c1 = time.perf_counter(), time.process_time()
from agent.discovery.config import DiscoveryConfig
from agent.discovery.packets import arp_sweep, syn_probe
from agent.discovery.targets import attached_subnets, make_plan
subnet, ports, pps = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3])
plan = make_plan([subnet], DiscoveryConfig(packets_per_second=pps), attached_subnets(), ports)
(target,) = plan.targets
t2, c2 = time.perf_counter(), time.process_time()
live = arp_sweep(target, pps, plan.timeout_seconds)
t3, c3 = time.perf_counter(), time.process_time()
verdicts = syn_probe(target, live, ports, pps, plan.timeout_seconds)
t4, c4 = time.perf_counter(), time.process_time()
opened = sorted(f"{ip}:{p}" for (ip, p), v in verdicts.items() if v[0] == "open")
print(json.dumps({"import": [t1 - t0, c1 - c0], "arp": [t3 - t2, c3 - c2],
                  "syn": [t4 - t3, c4 - c3], "live": sorted(live), "open": opened}))
"""


def child(argv: list[str]) -> tuple[float, float, int, str]:
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[3:6])} failed: {done.stderr.strip()}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu, 0, done.stdout


def peak_rss_kib(argv: list[str]) -> tuple[float, float, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"discover exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def run(net: Lan, repeat: int, pps_values: list[int]) -> dict[str, Any]:
    ports = ",".join(str(p) for p in PORTS)
    subnet = str(net.subnet)
    figures: dict[str, list[tuple[float, float]]] = {}
    lives: set[str] = set()
    for _ in range(repeat):
        wall, cpu, _, out = child(net.exec("nmap", "-sn", "-n", "-oG", "-", subnet))
        figures.setdefault("nmap -sn", []).append((wall, cpu))
        nmap_up = {line.split()[1] for line in out.splitlines() if "Status: Up" in line}
        nmap_up.discard(net.scanner_ip)
        hosts = sorted(nmap_up)
        wall, cpu, _, _ = child(net.exec("nmap", "-sS", "-T4", "-n", "-Pn", "-p", ports, *hosts))
        figures.setdefault("nmap -sS -T4", []).append((wall, cpu))
        for pps in pps_values:
            _, _, _, out = child(net.exec(sys.executable, "-c", PHASES, subnet, ports, str(pps)))
            phases = json.loads(out)
            lives = set(phases["live"])
            assert lives == nmap_up, (lives, nmap_up)
            for name in ("import", "arp", "syn"):
                figures.setdefault(f"{name}@{pps}", []).append(tuple(phases[name]))
    rss: list[int] = []
    whole: list[tuple[float, float]] = []
    for _ in range(repeat):
        wall, cpu, kib = peak_rss_kib(
            net.exec(AGENT, "discover", "--subnet", subnet, "--ports", ports, "--format", "json")
        )
        whole.append((wall, cpu))
        rss.append(kib)
    figures["discover (whole process)"] = whole
    median = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in figures.items()
    }
    return {"median": median, "rss_kib": statistics.median(rss), "live": len(lives)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pps", type=int, default=2000, help="a second, higher cap to time")
    args = parser.parse_args()
    if os.geteuid() != 0:
        skip("needs root (it builds a LAN of network namespaces)")
    for tool in ("ip", "nft", "nmap"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed")
    pps_values = [DEFAULT_PPS, args.pps]
    with tempfile.TemporaryDirectory() as work, lan(SPECS, Path(work)) as net:
        result = run(net, args.repeat, pps_values)
    m = result["median"]
    print(f"namespace LAN {result['live']} live hosts on a /24 (253 addresses), ports {len(PORTS)}")
    print(f"medians of {args.repeat} runs; ratio = agent / nmap, same run, same targets")
    print(f"{'measure':<34}{'wall s':>9}{'CPU s':>9}{'wall x':>9}{'CPU x':>9}")
    base_sn, base_ss = m["nmap -sn"], m["nmap -sS -T4"]
    print(f"{'nmap -sn (ARP ping)':<34}{base_sn[0]:>9.3f}{base_sn[1]:>9.3f}")
    print(f"{'nmap -sS -T4 (live hosts)':<34}{base_ss[0]:>9.3f}{base_ss[1]:>9.3f}")
    for pps in pps_values:
        arp, syn, imp = m[f"arp@{pps}"], m[f"syn@{pps}"], m[f"import@{pps}"]
        print(f"{f'agent ARP sweep, {pps} pps':<34}{arp[0]:>9.3f}{arp[1]:>9.3f}"
              f"{arp[0] / base_sn[0]:>9.2f}{arp[1] / max(base_sn[1], 1e-3):>9.2f}")  # fmt: skip
        print(f"{f'agent SYN probe, {pps} pps':<34}{syn[0]:>9.3f}{syn[1]:>9.3f}"
              f"{syn[0] / base_ss[0]:>9.2f}{syn[1] / max(base_ss[1], 1e-3):>9.2f}")  # fmt: skip
        print(f"{'scapy import (once per process)':<34}{imp[0]:>9.3f}{imp[1]:>9.3f}")
        record(f"agent ARP sweep wall, {pps} pps", arp[0], "s", baseline=base_sn[0],
               baseline_name="nmap -sn")  # fmt: skip
        record(f"agent SYN probe wall, {pps} pps", syn[0], "s", baseline=base_ss[0],
               baseline_name="nmap -sS -T4")  # fmt: skip
    whole = m["discover (whole process)"]
    print(f"{'canhgac-agent discover, default':<34}{whole[0]:>9.3f}{whole[1]:>9.3f}")
    record("canhgac-agent discover wall, default", whole[0], "s")
    record("canhgac-agent discover peak RSS", result["rss_kib"] / 1024, "MiB")


if __name__ == "__main__":
    main()
