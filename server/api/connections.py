"""Connection-level limits of the collector's HTTP server: what one client, or anyone
who can open sockets, may hold.

uvicorn bounds the idle time between requests (keep-alive) but not the time to send
a request's headers nor its body, so a client sending one byte a second held a
connection (and a file descriptor) forever; about a thousand of them starved the
process of descriptors. Here:

- `guarded_h11` is uvicorn's h11 protocol with a header deadline: a connection that
  has not completed a request's headers within `header_timeout` seconds of opening
  (or of its previous response) is closed.
- `BodyDeadline` is an ASGI middleware giving each request's body `body_timeout`
  seconds in all; a late body is answered 408 and its connection closed.
- `server_options` derives the connection cap from the process's file limit, keeping
  a reserve for the database, logs and TLS files. The cap is enforced when a
  connection opens (`Admission`), not when a request arrives: uvicorn's own cap
  (`limit_concurrency`) counted connections still sending their headers like busy
  ones and answered 503 to every request, /healthz included, once a flood of
  half-sent requests filled it, while accepting (and holding a descriptor for)
  every flooding connection. At the cap, the oldest connection that has not sent a
  complete request head is closed to make room; with none, a few reserve slots
  serve only /healthz and /readyz, and past those a connection is answered 503 and
  closed at once. The cap follows the file limit while serving (re-read at each
  admission), so a limit lowered with prlimit still leaves the reserve free.
- `HandshakeDeadlineLoop` is asyncio's event loop giving a TLS handshake
  `handshake_timeout` seconds: the header deadline starts only once the handshake is
  done (the HTTP protocol sees no connection before), and uvicorn leaves asyncio's
  60 s default, so a client that opened TLS and sent nothing held a descriptor for a
  minute, outside the connection cap (which counts only handshaken connections).
  It also accepts `ACCEPT_BATCH` connections per wake-up of the listening socket,
  not uvicorn's 2,048: a flood was accepted whole, up to the file limit, before any
  of it reached `Admission`.
- `quiet_accept_errors` turns asyncio's accept failures when descriptors do run out
  (EMFILE) into one log line per interval instead of a traceback each time.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# Descriptors kept out of the connection cap: SQLite (database, WAL, shm), logs, TLS
# files, the policy files read on reload, PostgreSQL pool connections.
FD_RESERVE = 64
MAX_CONNECTIONS = 1000
_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_LOG_INTERVAL = 10.0
# Connections past the cap that may still be served, for /healthz and /readyz only,
# when every connection under the cap is busy with a request (none can be closed).
HEALTH_RESERVE = 8
ACCEPT_BATCH = 8  # connections accepted per wake-up of the listening socket
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # to send a request line and headers
    handshake_timeout: float = 10.0  # to complete a TLS handshake (before any header)
    body_timeout: float = 60.0  # to send a whole body (a 10 MiB report at ~1.4 Mbit/s)
    keep_alive: float = 5.0  # idle between requests on one connection
    max_connections: int | None = None  # None: from the file limit
    max_header_bytes: int = 16 * 1024  # h11's buffer for an incomplete request head


def connection_cap(requested: int | None) -> int:
    """The connection cap: the request, never above the file limit minus the reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    by_files = MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else soft - FD_RESERVE
    cap = min(requested or MAX_CONNECTIONS, by_files)
    return max(cap, 1)


def server_options(limits: ConnectionLimits) -> dict[str, Any]:
    """uvicorn.Config keyword arguments enforcing `limits`."""
    return {
        # The cap is enforced by Admission when connections open; uvicorn's own
        # (limit_concurrency) stays off: it 503'd health checks behind a flood.
        "http": guarded_h11(limits.header_timeout, Admission(limits.max_connections)),
        "timeout_keep_alive": max(1, round(limits.keep_alive)),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        # uvicorn takes a loop factory as "module:name"; it calls it with no argument.
        "loop": f"{__name__}:{HandshakeDeadlineLoop.__name__}",
    }


class HandshakeDeadlineLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, whose TLS servers give a handshake `handshake_timeout` seconds.

    uvicorn (0.54) creates its servers with `ssl=` only, leaving asyncio's 60 s
    handshake deadline; this loop supplies the deadline to every TLS server it makes.
    `set_handshake_deadline` sets it before the servers are created.
    """

    handshake_timeout: float = ConnectionLimits.handshake_timeout

    def _accept_connection(  # type: ignore[no-untyped-def]
        self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, *args, **kwargs
    ) -> None:
        # asyncio accepts up to `backlog` connections (uvicorn: 2048) each time the
        # listening socket is readable, before any of them reaches Admission: a flood
        # was accepted whole, up to the file limit, and only then cut to the cap. A
        # few per wake-up (nginx takes one) keep that overshoot to a few dozen; the
        # kernel's listen queue keeps its full length.
        super()._accept_connection(  # type: ignore[misc]
            protocol_factory, sock, sslcontext, server, min(backlog, ACCEPT_BATCH), *args, **kwargs
        )

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", self.handshake_timeout)
        return await super().create_server(*args, **kwargs)


def set_handshake_deadline(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Give TLS handshakes on `loop` (a HandshakeDeadlineLoop) `seconds` to complete."""
    if not isinstance(loop, HandshakeDeadlineLoop):
        # Serving TLS without the deadline would quietly bring back the 60 s hold.
        raise TypeError(f"the collector runs on HandshakeDeadlineLoop, not {type(loop)}")
    loop.handshake_timeout = seconds


class Seat(enum.Enum):
    """What an opening connection is given."""

    REGULAR = "regular"  # under the cap
    HEALTH_ONLY = "health_only"  # a reserve slot: /healthz and /readyz, others 503
    REFUSED = "refused"  # answered 503 and closed at once


class _Admitted(Protocol):
    def header_idle(self) -> bool: ...

    def evict(self) -> None: ...


class Admission:
    """The connections one server process holds, oldest first, against the cap.

    A connection that has not sent a complete request head (a new one, or one idle
    after its answers) costs a descriptor and nothing else: at the cap the oldest of
    them is closed for the newcomer. That is the flood's connection, not a busy one,
    so a health check or an agent gets in at once instead of waiting in the listen
    backlog for the header deadline (10 s) to cut the flood.
    """

    def __init__(self, max_connections: int | None) -> None:
        self.max_connections = max_connections
        self.open: dict[_Admitted, None] = {}  # insertion order: oldest first
        self._last_log = 0.0
        self._evicted = 0
        self._refused = 0

    def cap(self) -> int:
        # Re-read at each admission (one getrlimit call): the limit can be lowered
        # while serving (prlimit), and a cap above it would run into EMFILE.
        return connection_cap(self.max_connections)

    def admit(self, connection: _Admitted) -> Seat:
        cap = self.cap()
        while len(self.open) >= cap:
            victim = next((c for c in self.open if c.header_idle()), None)
            if victim is None:
                break  # every connection is busy with a request: none is closed
            del self.open[victim]
            victim.evict()
            self._evicted += 1
        if len(self.open) < cap:
            seat = Seat.REGULAR
        elif len(self.open) < cap + HEALTH_RESERVE:
            seat = Seat.HEALTH_ONLY
        else:
            seat = Seat.REFUSED
            self._refused += 1
        if seat is not Seat.REFUSED:
            self.open[connection] = None
        if self._evicted or self._refused:
            self._log(cap)
        return seat

    def release(self, connection: _Admitted) -> None:
        self.open.pop(connection, None)

    def _log(self, cap: int) -> None:
        now = time.monotonic()
        if now - self._last_log < _ACCEPT_LOG_INTERVAL:
            return
        log.warning(
            "connection cap (%d) reached: closed %d connections that had not sent a"
            " request head, refused %d with 503 (in the last %g s at most)",
            cap,
            self._evicted,
            self._refused,
            _ACCEPT_LOG_INTERVAL,
        )
        self._last_log, self._evicted, self._refused = now, 0, 0


def guarded_h11(header_timeout: float, admission: Admission) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections slow to send their headers and
    admitting connections through `admission`."""

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            seat = admission.admit(self)
            if seat is Seat.REFUSED:
                transport.write(_BUSY_RESPONSE)
                transport.close()
                return
            if seat is Seat.HEALTH_ONLY:
                self.app = _health_only(self.app)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            admission.release(self)
            self._disarm_header_timer()
            super().connection_lost(exc)

        def header_idle(self) -> bool:
            """No request in progress: the connection waits for a request head."""
            return self.transport.is_closing() or self.cycle is None or self.cycle.response_complete

        def evict(self) -> None:
            self._disarm_header_timer()
            self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:
                self._disarm_header_timer()  # a request's headers are complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (
                self.cycle is None or self.cycle.response_complete
            ):
                self._arm_header_timer()  # the next request's headers, if any

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                # Nothing useful can be answered to half a request line: just close.
                self.transport.close()

    return GuardedH11Protocol


_BUSY_BODY = (
    b'{"error":{"code":"too_many_connections","message":"the collector holds as many'
    b' connections as it may; try again later","field":null}}'
)
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\nretry-after: 5\r\ncontent-length: "
    + str(len(_BUSY_BODY)).encode()
    + b"\r\n\r\n"
    + _BUSY_BODY
)


def _health_only(app: ASGIApp) -> ASGIApp:
    """`app` for /healthz and /readyz; 503 `too_many_connections` for anything else."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in HEALTH_PATHS:
            await app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"connection", b"close"),
                    (b"retry-after", b"5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BUSY_BODY})

    return serve


class BodyDeadline:
    """ASGI middleware: each HTTP request's body within `timeout` seconds in all.

    A body still arriving at the deadline looks to the application like a client
    that went away (it stops reading); the answer is replaced by a 408 with
    `Connection: close`, so the descriptor is freed whatever the client does next.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout
        late = False
        replaced = False

        async def timed_receive() -> Message:
            nonlocal late
            remaining = deadline - time.monotonic()
            if remaining > 0:
                try:
                    return await asyncio.wait_for(receive(), remaining)
                except TimeoutError:
                    pass  # the body is late: answered 408 below, through send
            late = True
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if not late:
                await send(message)
                return
            if replaced:
                return  # the application's own answer is dropped: ours went out
            replaced = True
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _TIMEOUT_BODY})

        await self.app(scope, timed_receive, guarded_send)


_TIMEOUT_BODY = (
    b'{"error":{"code":"body_timeout","message":"the request body did not arrive in time",'
    b'"field":null}}'
)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log running out of descriptors in accept() once per interval, without traceback.

    asyncio pauses accepting briefly and retries by itself; the default handler
    logged a full traceback each time, hundreds of megabytes under a flood.
    """
    last = 0.0
    suppressed = 0

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last, suppressed
        error = context.get("exception")
        if not (isinstance(error, OSError) and error.errno in _ACCEPT_ERRNOS):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - last < _ACCEPT_LOG_INTERVAL:
            suppressed += 1
            return
        log.warning(
            "cannot accept connections: %s (%d more like this not logged); lower"
            " the connection cap or raise LimitNOFILE",
            error.strerror,
            suppressed,
        )
        last, suppressed = now, 0

    loop.set_exception_handler(handler)
