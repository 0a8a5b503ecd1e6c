"""The listening collector: real sockets opened by the test, and a fake socket table for
deduplication, exposure and the non-root case."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.listening import collect_listening, exposure, systemd_unit
from agent.collectors.system import ProcessOwner
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp, udp
from tests.agent.privileges import as_unprivileged
from tests.support import require


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _open(opened: list[socket.socket], family: int, kind: int, address: str) -> int:
    sock = socket.socket(family, kind)
    opened.append(sock)
    sock.bind((address, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return int(sock.getsockname()[1])


def _entry(listeners: list[dict[str, Any]], protocol: str, port: int) -> dict[str, Any]:
    matches = [e for e in listeners if e["protocol"] == protocol and e["port"] == port]
    assert len(matches) == 1, matches
    return matches[0]


def test_finds_real_sockets_of_this_process(
    sockets: list[socket.socket], validate: Callable[[Any], Any]
) -> None:
    tcp_loopback = _open(sockets, socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")
    tcp_all = _open(sockets, socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0")
    udp_loopback = _open(sockets, socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1")
    # A connected UDP client socket and an accepted TCP connection are not listeners.
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets.append(client)
    client.connect(("127.0.0.1", udp_loopback))
    client_port = client.getsockname()[1]
    conn = socket.create_connection(("127.0.0.1", tcp_loopback))
    sockets.append(conn)
    conn_port = conn.getsockname()[1]

    listeners = collect_listening(CollectContext(run=RecordedRunner())).data

    me = psutil.Process()
    expected_owner = {
        "pid": os.getpid(),
        "process": me.name(),
        "user": me.username(),
        "executable": me.exe(),
        "unit": systemd_unit(CollectContext(), os.getpid()),
    }
    loopback = _entry(listeners, "tcp", tcp_loopback)
    assert loopback == {
        "protocol": "tcp",
        "family": "ipv4",
        "address": "127.0.0.1",
        "port": tcp_loopback,
        "exposure": "loopback",
        **expected_owner,
    }
    everywhere = _entry(listeners, "tcp", tcp_all)
    assert (everywhere["address"], everywhere["exposure"]) == ("0.0.0.0", "all")
    assert everywhere["pid"] == os.getpid()
    datagram = _entry(listeners, "udp", udp_loopback)
    assert datagram["exposure"] == "loopback" and datagram["pid"] == os.getpid()
    ports = {(e["protocol"], e["port"]) for e in listeners}
    assert ("udp", client_port) not in ports
    assert ("tcp", conn_port) not in ports
    validate(
        {
            "schema": "canhgac.facts/v1",
            "report_id": "0b7c2f0e-8f0a-4d55-9a0c-6c1b1f2e3d4a",
            "agent_id": "test",
            "seq": 0,
            "collected_at": "2026-01-01T00:00:00Z",
            "agent_version": "0.1.0",
            "listening": listeners,
            "errors": [],
        }
    )


def _ipv6_loopback_usable() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_finds_real_ipv6_loopback_socket(sockets: list[socket.socket]) -> None:
    require(socket.has_ipv6 and _ipv6_loopback_usable(), "no IPv6 loopback on this machine")
    port = _open(sockets, socket.AF_INET6, socket.SOCK_STREAM, "::1")
    entry = _entry(collect_listening(CollectContext(run=RecordedRunner())).data, "tcp", port)
    assert (entry["family"], entry["address"], entry["exposure"]) == ("ipv6", "::1", "loopback")


def test_unprivileged_run_reports_missing_owners(sockets: list[socket.socket]) -> None:
    """Really drop to `nobody` (in a forked child) and look at a socket root owns."""
    require(os.geteuid() == 0, "needs root to open a socket another user cannot attribute")
    port = _open(sockets, socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")

    def close_inherited() -> None:
        for sock in sockets:  # the child must not own the socket it looks at
            sock.close()

    def collect() -> dict[str, Any]:
        collected = collect_listening(CollectContext(run=RecordedRunner()))
        return {
            "data": collected.data,
            "issues": [[i.kind.value, i.reason] for i in collected.issues],
        }

    result = as_unprivileged(collect, close_inherited)
    entry = _entry(result["data"], "tcp", port)
    assert (entry["pid"], entry["process"], entry["user"]) == (None, None, None)
    assert entry["exposure"] == "loopback"
    permission = [reason for kind, reason in result["issues"] if kind == "permission"]
    unowned = sum(1 for e in result["data"] if e["pid"] is None)
    assert len(permission) == 1
    assert permission[0].startswith(f"{unowned} of {len(result['data'])} listening sockets")


def _collect(system: FakeSystem) -> Any:
    return collect_listening(CollectContext(run=RecordedRunner(), system=system))


def test_shared_socket_is_reported_once_with_the_lowest_pid() -> None:
    system = FakeSystem(
        sockets=[
            tcp("0.0.0.0", 80, 2002),
            tcp("0.0.0.0", 80, 2001),
            tcp("0.0.0.0", 80, None),
            tcp("0.0.0.0", 80, 2003),
            tcp("::", 80, 2001),
        ],
        owners={2001: ProcessOwner("nginx", "root")},
    )
    listeners = _collect(system).data
    assert [(e["family"], e["address"], e["pid"], e["process"]) for e in listeners] == [
        ("ipv4", "0.0.0.0", 2001, "nginx"),
        ("ipv6", "::", 2001, "nginx"),
    ]
    assert system.owner_lookups == [2001]  # one lookup per process, not per socket


def test_only_listening_tcp_and_unconnected_udp() -> None:
    system = FakeSystem(
        sockets=[
            tcp("127.0.0.1", 5432, 10),
            tcp("192.0.2.1", 40000, 11, status="ESTABLISHED"),
            tcp("192.0.2.1", 40001, 11, status="TIME_WAIT"),
            udp("0.0.0.0", 68, 12),
            udp("192.0.2.1", 51000, 13, connected=True),
            udp("0.0.0.0", 0, 14),
        ]
    )
    listeners = _collect(system).data
    assert [(e["protocol"], e["port"]) for e in listeners] == [("tcp", 5432), ("udp", 68)]


def test_missing_owners_without_root_are_a_permission_issue() -> None:
    system = FakeSystem(
        privileged=False,
        sockets=[tcp("0.0.0.0", 22, None), tcp("127.0.0.1", 631, None), tcp("127.0.0.1", 8080, 42)],
        owners={42: ProcessOwner("python3", "alice")},
    )
    collected = _collect(system)
    assert [(e["port"], e["pid"], e["user"]) for e in collected.data] == [
        (22, None, None),
        (631, None, None),
        (8080, 42, "alice"),
    ]
    assert len(collected.issues) == 1
    issue = collected.issues[0]
    assert issue.kind is ErrorKind.PERMISSION
    assert issue.reason.startswith("2 of 3 listening sockets")


def test_missing_owners_as_root_are_kernel_sockets_not_an_issue() -> None:
    system = FakeSystem(privileged=True, sockets=[udp("0.0.0.0", 2049, None)])
    collected = _collect(system)
    assert collected.data[0]["pid"] is None
    assert collected.issues == ()


def test_vanished_process_keeps_the_socket() -> None:
    system = FakeSystem(sockets=[tcp("0.0.0.0", 25, 77)])  # no owner recorded for 77
    entry = _collect(system).data[0]
    assert (entry["pid"], entry["process"], entry["user"]) == (77, None, None)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.53", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "all"),
        ("::", "all"),
        ("::ffff:0.0.0.0", "all"),
        ("192.0.2.7", "specific"),
        ("10.0.0.1", "specific"),
        ("fe80::1%eth0", "specific"),
        ("2001:db8::1", "specific"),
        ("128.0.0.1", "specific"),
        ("not-an-address", "specific"),
    ],
)
def test_exposure(address: str, expected: str) -> None:
    assert exposure(address) == expected
