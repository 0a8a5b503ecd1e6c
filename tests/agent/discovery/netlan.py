"""An agency LAN made of real network namespaces, for discovery's tests and bench.

One "switch" namespace holds a bridge; every host (the scanner included) is its own
namespace with one veth leg on that bridge. Nothing is created in the caller's
namespace, so a sweep inside the scanner reaches only these hosts. Names carry the
process id and a random part (two runs never collide), and `lan()` removes every
namespace and listener it made, also when building or the test fails.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.agent.certs import make

# Binds every port, wraps `tls` ports in TLS, says "ready" once listening.
LISTENER = """
import json, socket, ssl, sys, threading
spec = json.loads(sys.argv[1])
context = None
if spec["tls"]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(spec["cert"], spec["key"])
def serve(sock, tls):
    while True:
        conn, _ = sock.accept()
        try:
            if tls:
                conn = context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            pass
        conn.close()
for port in spec["ports"]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    threading.Thread(target=serve, args=(s, port in spec["tls"]), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class HostSpec:
    name: str
    mac: str
    listen: tuple[int, ...] = ()
    tls: tuple[int, ...] = ()
    drop: tuple[int, ...] = ()  # nftables drops SYNs to these (filtered)


@dataclass
class Lan:
    prefix: str
    subnet: ipaddress.IPv4Network
    scanner: str  # namespace of the scanner
    scanner_ip: str
    hosts: dict[str, tuple[str, HostSpec]] = field(default_factory=dict)  # ns -> (ip, spec)

    def ip_of(self, name: str) -> str:
        return next(ip for ns, (ip, spec) in self.hosts.items() if spec.name == name)

    def exec(self, *argv: str) -> list[str]:
        """argv run inside the scanner's namespace."""
        return ["ip", "netns", "exec", self.scanner, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def lan(specs: Sequence[HostSpec], workdir: Path, third_octet: int = 77) -> Iterator[Lan]:
    prefix = f"cg{os.getpid()}x{secrets.token_hex(3)}"
    subnet = ipaddress.IPv4Network(f"10.{third_octet}.{secrets.randbelow(200) + 20}.0/24")
    addrs = list(subnet.hosts())
    made: list[str] = []
    procs: list[subprocess.Popen[str]] = []
    switch = f"{prefix}-sw"
    net = Lan(prefix, subnet, f"{prefix}-scan", str(addrs[9]))
    try:
        _ip("netns", "add", switch)
        made.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        legs: list[tuple[str, str, str, HostSpec | None]] = [
            (net.scanner, net.scanner_ip, "02:00:00:00:00:0a", None)
        ]
        legs += [(f"{prefix}-{s.name}", str(addrs[10 + i]), s.mac, s) for i, s in enumerate(specs)]
        for n, (ns, ip, mac, spec) in enumerate(legs):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", switch, "link", "add", f"v{n}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", switch, "link", "set", f"v{n}", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "eth0", "address", mac)
            _ip("-n", ns, "addr", "add", f"{ip}/{subnet.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            if spec is None:
                continue
            net.hosts[ns] = (ip, spec)
            if spec.drop:
                ports = ", ".join(str(p) for p in spec.drop)
                drop_input(ns, f"tcp dport {{ {ports} }}")
            if spec.listen:
                procs.append(listener(ns, spec, workdir))
        yield net
    finally:
        remove(procs, made)


def drop_input(ns: str, match: str) -> None:
    """An nftables rule in namespace `ns` dropping the input `match` selects."""
    rules = (
        "table inet cgtest {\n chain input {\n"
        "  type filter hook input priority 0; policy accept;\n"
        f"  {match} drop\n }}\n}}\n"
    )
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules,
                   check=True, capture_output=True, text=True, timeout=30)  # fmt: skip


def remove(procs: Sequence[subprocess.Popen[str]], namespaces: Sequence[str]) -> None:
    """Stop the listeners, then delete the namespaces (last made first)."""
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)
    for ns in reversed(namespaces):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)


def listener(ns: str, spec: HostSpec, workdir: Path) -> subprocess.Popen[str]:
    cert = workdir / f"{spec.name}.crt"
    key = workdir / f"{spec.name}.key"
    if spec.tls:
        made = make(spec.name)
        cert.write_bytes(made.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            made.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    args = {"ports": list(spec.listen), "tls": list(spec.tls), "cert": str(cert), "key": str(key)}
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER, json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"listener in {ns} did not start: {line!r}")
    return proc
