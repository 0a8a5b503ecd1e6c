"""The `listening` domain: every listening TCP socket and every bound UDP socket.

Each entry says who can reach the socket (`exposure`) and which process owns it.
The kernel's socket tables are readable by anyone on Linux, but the owner of a socket
is only visible to root or to the owner itself: without root, owners of other users'
sockets are null and one `permission` entry in `errors` counts them.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Literal

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    read_file,
)
from agent.collectors.system import InetSocket, ProcessOwner

Exposure = Literal["loopback", "all", "specific"]

# The schema's bound on the list; a host past it has bigger problems than this report.
MAX_LISTENERS = 20000

_FAMILIES: dict[int, str] = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def exposure(address: str) -> Exposure:
    """Who can reach a socket bound to `address`.

    `::ffff:127.0.0.1` (an IPv4-mapped loopback address on a dual-stack socket) is
    loopback too; an address that does not parse is reported as specific rather than
    guessed at.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "specific"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "all"
    if ip.is_loopback:
        return "loopback"
    return "specific"


def is_listener(row: InetSocket) -> bool:
    """A TCP socket in LISTEN state, or an unconnected UDP socket bound to a port.

    A connected UDP socket (a DNS or NTP client) only accepts datagrams from its peer,
    so it is not something the network can reach.
    """
    if row.family not in _FAMILIES or row.port == 0:
        return False
    if row.type == socket.SOCK_STREAM:
        return row.status == "LISTEN"
    if row.type == socket.SOCK_DGRAM:
        return not row.connected
    return False


def systemd_unit(ctx: CollectContext, pid: int) -> str | None:
    """The systemd unit a process runs in, from its cgroup path, or None.

    cgroup v2: "0::/system.slice/nginx.service"; v1: "1:name=systemd:/system.slice/...".
    The innermost ".service", ".socket" or ".scope" component names the unit; user
    sessions ("session-3.scope" under user.slice) are reported as such.
    """
    try:
        text = read_file(ctx, f"/proc/{pid}/cgroup", 64 * 1024)
    except CollectorError:
        # cgroup is readable by all; a failure means the process exited (ESRCH) after
        # the socket table was read, and its socket is still reported, without a unit.
        return None
    if text is None:
        return None
    for line in text.splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers not in ("", "name=systemd"):
            continue
        units = [c for c in path.split("/") if c.endswith(_UNIT_SUFFIXES)]
        if units:
            return clip(units[-1], 256)
    return None


_UNIT_SUFFIXES = (".service", ".socket", ".scope", ".mount", ".swap")


def collect_listening(ctx: CollectContext) -> Collected:
    rows = [row for row in ctx.system.inet_sockets() if is_listener(row)]
    chosen: dict[tuple[str, str, str, int], InetSocket] = {}
    for row in rows:
        key = (_protocol(row), _FAMILIES[row.family], row.address, row.port)
        previous = chosen.get(key)
        if previous is None or _better_owner(row, previous):
            chosen[key] = row

    owners: dict[int, ProcessOwner] = {}
    listeners: list[dict[str, Any]] = []
    for (protocol, family, address, port), row in sorted(chosen.items(), key=_order):
        owner = ProcessOwner(None, None)
        if row.pid is not None:
            if row.pid not in owners:
                owners[row.pid] = ctx.system.process_owner(row.pid)
            owner = owners[row.pid]
        listeners.append(
            {
                "protocol": protocol,
                "family": family,
                "address": clip(address, 64),
                "port": port,
                "exposure": exposure(address),
                "pid": row.pid,
                "process": clip(owner.name, 256) if owner.name else None,
                "user": clip(owner.user, 256) if owner.user else None,
                "executable": clip(owner.executable, 4096) if owner.executable else None,
                "unit": systemd_unit(ctx, row.pid) if row.pid is not None else None,
            }
        )

    issues: list[Issue] = []
    unowned = sum(1 for entry in listeners if entry["pid"] is None)
    # As root, an ownerless socket belongs to the kernel (NFS, WireGuard...) or to
    # another network namespace: that is a fact, not a missing permission.
    if unowned and not ctx.system.is_privileged():
        issues.append(
            Issue(
                ErrorKind.PERMISSION,
                f"{unowned} of {len(listeners)} listening sockets have no visible owning"
                " process (pid, process and user are null); run the agent as root to see them",
            )
        )
    if len(listeners) > MAX_LISTENERS:
        issues.append(
            Issue(
                ErrorKind.FAILED,
                f"{len(listeners)} listening sockets; only the first {MAX_LISTENERS} are reported",
            )
        )
        listeners = listeners[:MAX_LISTENERS]
    return Collected(listeners, tuple(issues))


def _protocol(row: InetSocket) -> str:
    return "tcp" if row.type == socket.SOCK_STREAM else "udp"


def _better_owner(row: InetSocket, previous: InetSocket) -> bool:
    """Which row of one shared socket names its owner: a known pid, then the lowest.

    A socket inherited by forked workers (nginx, sshd, gunicorn) appears once per
    process; the lowest pid is usually the master that opened it.
    """
    if row.pid is None:
        return False
    return previous.pid is None or row.pid < previous.pid


def _order(item: tuple[tuple[str, str, str, int], InetSocket]) -> tuple[str, int, str, str]:
    (protocol, family, address, port), _ = item
    return (protocol, port, family, address)
