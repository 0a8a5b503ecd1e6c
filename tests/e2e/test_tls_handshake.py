"""The TLS handshake deadline of a real collector process on loopback (issue 14).

Before it, only asyncio's 60 s default bounded a client that opened a TCP connection
to the HTTPS collector and never sent a ClientHello: the header deadline starts once
the handshake is done, and the connection cap counts only handshaken connections.
Nothing is mocked: a real `canhgac-server serve` over TLS with certificates made
here, real silent sockets, real HTTPS requests to /healthz meanwhile.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.collector_process import CollectorProcess, CollectorTLS, running_collector
from tests.server.tls import make_pki

HANDSHAKE_TIMEOUT = 1.5


@pytest.fixture
def served(tmp_path: Path) -> Iterator[CollectorProcess]:
    pki = make_pki(tmp_path)
    tls = CollectorTLS(cert=pki.server_cert, key=pki.server_key, ca=pki.ca)
    with running_collector(
        "--db",
        f"sqlite:///{tmp_path / 'canhgac.db'}",
        "--tls-handshake-timeout",
        str(HANDSHAKE_TIMEOUT),
        # Far beyond the handshake deadline: only the handshake deadline can close.
        "--header-timeout",
        "60",
        tls=tls,
        log_dir=tmp_path,
    ) as collector:
        yield collector


def _seconds_until_closed(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed `sock` (EOF or reset), None if not within `limit`."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_client_silent_before_the_handshake_is_closed(served: CollectorProcess) -> None:
    assert served.tls is not None
    options = served.tls.requests_options()
    with ExitStack() as stack:
        silent = [
            stack.enter_context(socket.create_connection(("127.0.0.1", served.port), timeout=10))
            for _ in range(5)
        ]
        # While they are held, the collector answers a real HTTPS client.
        health = requests.get(f"{served.url}/healthz", timeout=10, **options)
        assert health.status_code == 200
        waited = [_seconds_until_closed(sock, HANDSHAKE_TIMEOUT + 5) for sock in silent]
    assert all(w is not None for w in waited), waited
    # Closed by the deadline, not at once: the first socket waited about the bound.
    assert waited[0] is not None and waited[0] >= HANDSHAKE_TIMEOUT - 0.5, waited
    health = requests.get(f"{served.url}/healthz", timeout=10, **options)
    assert health.status_code == 200
    assert "Traceback" not in served.log()


def test_a_slow_but_complete_handshake_is_served(served: CollectorProcess) -> None:
    """The deadline is on the handshake, not on the connection: a client that takes
    most of the bound before its ClientHello is still served."""
    assert served.tls is not None
    context = ssl.create_default_context(cafile=str(served.tls.ca))
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        time.sleep(HANDSHAKE_TIMEOUT / 3)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
