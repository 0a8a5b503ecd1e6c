"""Failures of the TLS prober are never silent: real servers on loopback.

A configured endpoint with nothing listening is an item with `reachable: false` and a
reason, and CERT-ENDPOINT-UNREACHABLE fails on it; a listener that speaks only TLS 1.0
(`openssl s_server -tls1`, because Python's ssl cannot serve TLS 1.0 on every build) is
reported with its certificate and protocol. Only loopback addresses are dialled.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import CollectContext, CollectSettings
from agent.collectors.certificates import collect_certificates
from agent.collectors.tlsprobe import FailureKind, Probe, ProbeFailure, classify, probe
from rules.derived import add_derived
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import RuleResult, Status
from tests.agent.certs import NOW, make, rsa_key
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp
from tests.support import free_port, require, require_tool


def _ctx(*endpoints: str, **kw: Any) -> CollectContext:
    return CollectContext(
        root=Path("/nonexistent"),
        run=RecordedRunner(),
        system=kw.pop("system", FakeSystem()),
        settings=CollectSettings(
            certificate_paths=(),
            tls_endpoints=endpoints,
            probe_listeners=kw.pop("probe_listeners", False),
        ),
        now=lambda: NOW,
        **kw,
    )


def _document(certificates: list[dict[str, Any]]) -> dict[str, Any]:
    """`certificates` (a collector's items) in an envelope, with the ages the document
    builder derives (collected_at is NOW)."""
    document = {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7c2f0e-8f0a-4d55-9a0c-6c1b1f2e3d4a",
        "agent_id": "t",
        "seq": 1,
        "collected_at": "2026-11-27T08:00:00Z",
        "agent_version": "0.1.0",
        "certificates": certificates,
        "errors": [],
    }
    return add_derived(document, NOW)


def _certificate_results(facts: dict[str, Any]) -> dict[str, RuleResult]:
    ruleset = load_rules([builtin_packs_dir() / "certificates.yaml"])
    return {result.rule_id: result for result in evaluate(ruleset, facts)}


def test_a_configured_endpoint_with_nothing_listening_is_reported_and_fails(
    validate: Callable[[Any], Any],
) -> None:
    port = free_port()  # bound and released: nothing listens there now
    collected = collect_certificates(_ctx(f"127.0.0.1:{port}"))
    assert collected.issues == ()
    assert collected.data == [
        {
            "location": f"127.0.0.1:{port}",
            "source": "endpoint",
            "path": None,
            "address": "127.0.0.1",
            "port": port,
            "reachable": False,
            "reason": {"kind": "refused", "detail": "Connection refused"},
        }
    ]
    document = _document(collected.data)
    validate(document)

    results = _certificate_results(document)
    unreachable = results["CERT-ENDPOINT-UNREACHABLE"]
    assert unreachable.status is Status.FAIL
    (item,) = unreachable.items
    assert item.key == f"127.0.0.1:{port}"
    assert item.message.to_dict()["en"] == (
        f"Cannot read the certificate of the endpoint 127.0.0.1:{port}: refused (Connection refused)"
    )
    vi = item.message.to_dict()["vi"]
    assert f"127.0.0.1:{port}" in vi and "`refused`" in vi  # the reason code, defined in docs
    assert "Connection refused" not in vi  # no English system text in Vietnamese mode
    # The rules that judge a certificate skip it: neither an error nor a failure.
    others = {rule: r.status for rule, r in results.items() if rule != unreachable.rule_id}
    assert set(others.values()) == {Status.PASS}, others


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    # The test suite's resolver refuses every name but localhost (no DNS query leaves).
    (item,) = collect_certificates(_ctx("portal.example.invalid:443")).data
    assert item["reachable"] is False
    assert item["reason"]["kind"] == "unreachable"
    assert "portal.example.invalid" in item["reason"]["detail"]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port whose kernel accepts connections that nobody ever answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_listener_that_never_answers_times_out(silent_listener: int) -> None:
    found = probe("127.0.0.1", silent_listener, None, timeout=0.3)
    assert isinstance(found, ProbeFailure) and found.kind is FailureKind.TIMEOUT


@pytest.fixture
def http_listener() -> Iterator[int]:
    """A plain-text server: answers anything with an HTTP error, as a web port would."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_a_plain_text_service_is_not_tls(http_listener: int) -> None:
    found = probe("127.0.0.1", http_listener, None, timeout=2.0)
    assert isinstance(found, ProbeFailure) and found.kind is FailureKind.NOT_TLS, found


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), FailureKind.REFUSED),
        (TimeoutError("timed out"), FailureKind.TIMEOUT),
        (socket.gaierror(-2, "Name or service not known"), FailureKind.UNREACHABLE),
        (OSError(113, "No route to host"), FailureKind.UNREACHABLE),
        (ConnectionResetError(104, "Connection reset by peer"), FailureKind.RESET),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), FailureKind.RESET),
        (ValueError("bad server name"), FailureKind.FAILED),
    ],
)
def test_classify(error: BaseException, kind: FailureKind) -> None:
    assert classify(error).kind is kind


def test_the_prober_comes_from_the_context() -> None:
    """Configured endpoints that fail are items; local listeners that fail stay silent
    (most listeners do not speak TLS at all)."""
    asked: list[tuple[str, int, str | None]] = []

    def prober(host: str, port: int, sni: str | None, timeout: float) -> Probe | ProbeFailure:
        asked.append((host, port, sni))
        return ProbeFailure(FailureKind.HANDSHAKE_FAILED, "SSLV3_ALERT_HANDSHAKE_FAILURE: alert")

    system = FakeSystem(sockets=[tcp("0.0.0.0", 22, pid=1)])
    ctx = _ctx("portal.example.gov.vn:443", system=system, probe_listeners=True, tls_prober=prober)
    items = collect_certificates(ctx).data
    assert sorted(asked) == [  # probed concurrently, configured ones first
        ("127.0.0.1", 22, "fake-node"),
        ("portal.example.gov.vn", 443, "portal.example.gov.vn"),
    ]
    assert [(i["location"], i["reachable"], i["reason"]) for i in items] == [
        (
            "portal.example.gov.vn:443",
            False,
            {"kind": "handshake_failed", "detail": "SSLV3_ALERT_HANDSHAKE_FAILURE: alert"},
        )
    ]


# A listener that speaks only TLS 1.0 ------------------------------------------------


@pytest.fixture
def tls10_server(tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """`openssl s_server` speaking only TLS 1.0 with a weak RSA-1024 key, on loopback."""
    openssl = require_tool("openssl")
    made = make("legacy.example.gov.vn", key=rsa_key(1024), dns=("legacy.example.gov.vn",))
    (tmp_path / "cert.pem").write_bytes(made.pem())
    (tmp_path / "key.pem").write_bytes(made.key_pem())
    port = free_port()
    server = subprocess.Popen(
        [
            openssl,
            "s_server",
            "-tls1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(tmp_path / "cert.pem"),
            "-key",
            str(tmp_path / "key.pem"),
            "-quiet",
            "-naccept",
            "20",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and server.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        if server.poll() is not None:
            why = (server.stderr.read() if server.stderr else b"").decode(errors="replace")
            # Some OpenSSL builds have TLS 1.0 compiled out or forbidden by policy.
            require(False, f"this openssl cannot serve TLS 1.0: {why.strip()[:300]}")
        yield port, made
    finally:
        server.kill()
        server.wait(5)
        if server.stderr:
            server.stderr.close()


def test_a_tls10_only_listener_is_reported_with_its_certificate(
    tls10_server: tuple[int, Any], validate: Callable[[Any], Any]
) -> None:
    port, _made = tls10_server
    collected = collect_certificates(_ctx(f"127.0.0.1:{port}"))
    (item,) = collected.data
    assert item["location"] == f"127.0.0.1:{port}#0"
    assert item["reachable"] is True and item["reason"] is None
    assert item["tls_version"] == "TLSv1"
    assert item["subject"] == "CN=legacy.example.gov.vn"
    assert (item["key_type"], item["key_bits"]) == ("RSA", 1024)
    assert item["accepts_tls10"] is True and item["accepts_tls11"] is False
    # Today's default client cannot talk to it at all: verification is unknown, not failed.
    assert item["chain_verified"] is None
    document = _document(collected.data)
    validate(document)
    results = _certificate_results(document)
    assert results["CERT-LEGACY-TLS"].status is Status.FAIL
    assert results["CERT-WEAK-KEY"].status is Status.FAIL
    assert results["CERT-ENDPOINT-UNREACHABLE"].status is Status.PASS
