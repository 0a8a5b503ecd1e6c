"""Test doubles for the agent: a recorded command runner and a fake psutil facade."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agent.collectors.system import InetSocket, Nic, NicAddress, ProcessOwner, Uname
from agent.errors import CommandNotFound
from agent.runner import CommandResult


class RecordedRunner:
    """Replays recorded command outputs and remembers what was asked."""

    def __init__(self, recordings: Mapping[tuple[str, ...], CommandResult] | None = None):
        self.recordings = dict(recordings or {})
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        if key not in self.recordings:
            raise CommandNotFound(f"no recording for {key}")
        return self.recordings[key]


def tcp(address: str, port: int, pid: int | None = None, *, status: str = "LISTEN") -> InetSocket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return InetSocket(socket.SOCK_STREAM, family, address, port, status != "LISTEN", status, pid)


def udp(address: str, port: int, pid: int | None = None, *, connected: bool = False) -> InetSocket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return InetSocket(socket.SOCK_DGRAM, family, address, port, connected, "NONE", pid)


@dataclass
class FakeSystem:
    uname_value: Uname = field(
        default_factory=lambda: Uname("Linux", "fake-node", "6.1.0-fake", "#1 SMP fake", "aarch64")
    )
    privileged: bool = True
    boot: float | None = 1_700_000_000.0
    logical_cpus: int | None = 8
    physical_cpus: int | None = 4
    memory_value: tuple[int, int | None] = (16 * 2**30, 2**30)
    nics: list[Nic] = field(
        default_factory=lambda: [
            Nic(
                "lo",
                (
                    NicAddress("ipv4", "127.0.0.1", "255.0.0.0"),
                    NicAddress("ipv6", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                    NicAddress("link", "00:00:00:00:00:00"),
                ),
                True,
                65536,
            )
        ]
    )
    sockets: list[InetSocket] = field(default_factory=list)
    owners: dict[int, ProcessOwner] = field(default_factory=dict)
    owner_lookups: list[int] = field(default_factory=list)
    # mount point -> (total, used, free) bytes; missing: statvfs failed
    usage: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {"/": (20 * 2**30, 5 * 2**30, 14 * 2**30)}
    )

    def uname(self) -> Uname:
        return self.uname_value

    def is_privileged(self) -> bool:
        return self.privileged

    def boot_time(self) -> float | None:
        return self.boot

    def cpu_count(self, *, logical: bool) -> int | None:
        return self.logical_cpus if logical else self.physical_cpus

    def memory(self) -> tuple[int, int | None]:
        return self.memory_value

    def interfaces(self) -> list[Nic]:
        return list(self.nics)

    def inet_sockets(self) -> list[InetSocket]:
        return list(self.sockets)

    def process_owner(self, pid: int) -> ProcessOwner:
        self.owner_lookups.append(pid)
        return self.owners.get(pid, ProcessOwner(None, None))

    def disk_usage(self, mountpoint: str) -> tuple[int, int, int] | None:
        return self.usage.get(mountpoint)
