"""TCP connect probing, for hosts where raw sockets are not permitted: the kernel's
own handshake, many at once with non-blocking sockets, started no faster than the
packets-per-second cap. Connected is open, refused is closed, silence or an ICMP
error is filtered (unreachable: no host answered ARP either)."""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Iterable

from agent.discovery.model import PortState

MAX_IN_FLIGHT = 256
Verdict = tuple[PortState, str]


def connect_probe(
    pairs: Iterable[tuple[str, int]], pps: int, timeout: float
) -> dict[tuple[str, int], Verdict]:
    todo = list(pairs)
    verdicts: dict[tuple[str, int], Verdict] = {}
    selector = selectors.DefaultSelector()
    deadlines: dict[socket.socket, tuple[tuple[str, int], float]] = {}
    interval = 1.0 / pps
    next_start = time.monotonic()
    try:
        while todo or deadlines:
            now = time.monotonic()
            while todo and len(deadlines) < MAX_IN_FLIGHT and now >= next_start:
                key = todo.pop(0)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex(key)
                if code in (0, errno.EINPROGRESS):
                    selector.register(sock, selectors.EVENT_WRITE)
                    deadlines[sock] = (key, now + timeout)
                else:
                    verdicts[key] = _verdict(code)
                    sock.close()
                next_start += interval
                now = time.monotonic()
            wait = min([d for _, d in deadlines.values()] + [next_start if todo else now + 0.05])
            for event, _ in selector.select(max(0.0, min(wait - now, 0.05))):
                ready = event.fileobj
                assert isinstance(ready, socket.socket)
                key, _ = deadlines.pop(ready)
                verdicts[key] = _verdict(ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
                selector.unregister(ready)
                ready.close()
            now = time.monotonic()
            for sock, (key, deadline) in list(deadlines.items()):
                if now >= deadline:
                    verdicts[key] = (PortState.FILTERED, "no-response")
                    del deadlines[sock]
                    selector.unregister(sock)
                    sock.close()
    finally:
        for sock in deadlines:
            sock.close()
        selector.close()
    return verdicts


def _verdict(code: int) -> Verdict:
    if code == 0:
        return (PortState.OPEN, "connected")
    if code == errno.ECONNREFUSED:
        return (PortState.CLOSED, "refused")
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return (PortState.FILTERED, "unreachable")
    return (PortState.FILTERED, errno.errorcode.get(code, str(code)).lower())
