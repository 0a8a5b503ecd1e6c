"""A small facade over psutil and `platform`: what collectors need from the live system.

Collectors see plain dataclasses instead of psutil's types, so unit tests build the
inputs directly and the conversions (prefix lengths, exposure, deduplication) stay in
the collectors, where they are tested. psutil is a dependency of the agent extra, so it
is imported here like any other; the rule tooling never imports the collectors.
"""

from __future__ import annotations

import os
import platform
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import psutil

from agent.collectors.failures import CollectorError, ErrorKind

AddressKind = Literal["ipv4", "ipv6", "link", "other"]


@dataclass(frozen=True)
class Uname:
    system: str
    node: str
    release: str
    version: str
    machine: str


@dataclass(frozen=True)
class NicAddress:
    kind: AddressKind
    address: str
    netmask: str | None = None


@dataclass(frozen=True)
class Nic:
    name: str
    addresses: tuple[NicAddress, ...]
    is_up: bool | None = None
    mtu: int | None = None


@dataclass(frozen=True)
class InetSocket:
    """One row of the kernel's socket tables (psutil's `sconn`, flattened)."""

    type: int  # socket.SOCK_STREAM or socket.SOCK_DGRAM
    family: int  # socket.AF_INET or socket.AF_INET6
    address: str
    port: int
    connected: bool  # has a remote endpoint
    status: str  # psutil status: "LISTEN", "ESTABLISHED", "NONE" for UDP...
    pid: int | None


@dataclass(frozen=True)
class ProcessOwner:
    name: str | None
    user: str | None
    executable: str | None = None


class System(Protocol):
    """What collectors read from the running system besides files and commands."""

    def uname(self) -> Uname: ...

    def is_privileged(self) -> bool: ...

    def boot_time(self) -> float | None: ...

    def cpu_count(self, *, logical: bool) -> int | None: ...

    def memory(self) -> tuple[int, int | None]:
        """Total RAM and total swap in bytes."""
        ...

    def interfaces(self) -> list[Nic]: ...

    def inet_sockets(self) -> list[InetSocket]: ...

    def process_owner(self, pid: int) -> ProcessOwner: ...

    def disk_usage(self, mountpoint: str) -> tuple[int, int, int] | None:
        """Total, used and free (for ordinary users) bytes, as df counts them; None
        when the mount cannot be queried (stale NFS, no permission)."""
        ...


class PsutilSystem:
    """The real system, read through psutil."""

    def uname(self) -> Uname:
        u = platform.uname()
        return Uname(u.system, u.node, u.release, u.version, u.machine)

    def is_privileged(self) -> bool:
        return os.geteuid() == 0

    def boot_time(self) -> float | None:
        return float(psutil.boot_time())

    def cpu_count(self, *, logical: bool) -> int | None:
        return psutil.cpu_count(logical=logical)

    def memory(self) -> tuple[int, int | None]:
        return int(psutil.virtual_memory().total), int(psutil.swap_memory().total)

    def interfaces(self) -> list[Nic]:
        stats = psutil.net_if_stats()
        nics = []
        for name, addrs in psutil.net_if_addrs().items():
            converted = tuple(
                NicAddress(_address_kind(int(a.family), psutil.AF_LINK), a.address, a.netmask)
                for a in addrs
            )
            stat = stats.get(name)
            nics.append(
                Nic(
                    name=name,
                    addresses=converted,
                    is_up=stat.isup if stat else None,
                    mtu=stat.mtu if stat else None,
                )
            )
        return nics

    def inet_sockets(self) -> list[InetSocket]:
        try:
            rows = psutil.net_connections(kind="inet")
        except psutil.AccessDenied as e:
            # Linux lets anyone read the socket tables; macOS and others need root.
            raise CollectorError(
                ErrorKind.PERMISSION, "reading the socket tables needs root on this system"
            ) from e
        return [
            InetSocket(
                type=int(row.type),
                family=int(row.family),
                address=row.laddr.ip if row.laddr else "",
                port=row.laddr.port if row.laddr else 0,
                connected=bool(row.raddr),
                status=row.status,
                pid=row.pid,
            )
            for row in rows
        ]

    def process_owner(self, pid: int) -> ProcessOwner:
        try:
            process = psutil.Process(pid)
        except psutil.Error:
            return ProcessOwner(None, None)
        return ProcessOwner(
            _attempt(process.name), _attempt(process.username), _attempt(process.exe) or None
        )

    def disk_usage(self, mountpoint: str) -> tuple[int, int, int] | None:
        # statvfs does not block on a healthy mount; a hung NFS server is bounded by
        # the collector's time budget.
        try:
            st = os.statvfs(mountpoint)
        except OSError:
            return None
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        return total, used, free


def _attempt(getter: Callable[[], str]) -> str | None:
    try:
        value = getter()
    except psutil.Error:
        # The process exited or hides this attribute; the socket is still reported.
        return None
    return value if isinstance(value, str) else None


def _address_kind(family: int, link_family: int) -> AddressKind:
    if family == socket.AF_INET:
        return "ipv4"
    if family == socket.AF_INET6:
        return "ipv6"
    if family == link_family:
        return "link"
    return "other"


class OneCollection:
    """`inner`, with the socket table read once: made for one collection, whose
    listening and certificates domains both read it (psutil walks every process's
    descriptors for it) and describe the same instant."""

    def __init__(self, inner: System) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._sockets: list[InetSocket] | None = None
        self._error: CollectorError | None = None

    def inet_sockets(self) -> list[InetSocket]:
        # The second reader waits for the first (each within its own time budget).
        with self._lock:
            if self._sockets is None and self._error is None:
                try:
                    self._sockets = self.inner.inet_sockets()
                except CollectorError as e:
                    self._error = e  # the same answer for both domains
            if self._error is not None:
                raise self._error
            assert self._sockets is not None
            return list(self._sockets)

    def uname(self) -> Uname:
        return self.inner.uname()

    def is_privileged(self) -> bool:
        return self.inner.is_privileged()

    def boot_time(self) -> float | None:
        return self.inner.boot_time()

    def cpu_count(self, *, logical: bool) -> int | None:
        return self.inner.cpu_count(logical=logical)

    def memory(self) -> tuple[int, int | None]:
        return self.inner.memory()

    def interfaces(self) -> list[Nic]:
        return self.inner.interfaces()

    def process_owner(self, pid: int) -> ProcessOwner:
        return self.inner.process_owner(pid)

    def disk_usage(self, mountpoint: str) -> tuple[int, int, int] | None:
        return self.inner.disk_usage(mountpoint)
