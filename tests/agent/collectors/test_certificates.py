"""The certificates collector: files (PEM bundles, DER, exclusions) and endpoints (a real
TLS server on loopback, found through its listening socket)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import CollectContext, CollectSettings, ErrorKind
from agent.collectors.certificates import collect_certificates, parse_endpoint
from agent.collectors.certparse import describe, load_certificates, name_matches
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.derived import add_derived
from rules.facts import Domain
from tests.agent.certs import NOW, Made, ec_key, make, rsa_key, sha1_signed
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.privileges import as_unprivileged


def _ctx(root: Path, **settings: Any) -> CollectContext:
    return CollectContext(
        root=root,
        run=RecordedRunner(),
        system=FakeSystem(),
        settings=CollectSettings(**{"probe_listeners": False, **settings}),
        now=lambda: NOW,
    )


def _write(root: Path, host_path: str, data: bytes) -> None:
    path = root / host_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _expected(made: Made, location: str, path: str, position: int, **fields: Any) -> dict[str, Any]:
    cert = made.cert
    return {
        "location": location,
        "source": "file",
        "path": path,
        "address": None,
        "port": None,
        "chain_position": position,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "san": [],
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fingerprint_sha256": hashlib.sha256(made.der()).hexdigest(),
        "exposure": None,
        "tls_version": None,
        "chain_verified": None,
        "verify_error": None,
        "hostname_matches": None,
        "accepts_tls10": None,
        "accepts_tls11": None,
        "reachable": None,
        "reason": None,
        **fields,
    }


def test_every_kind_of_certificate_field_by_field(
    tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    ca = make("Agency CA", key=rsa_key(2048), ca=True)
    cases = {
        "expired": make(
            "old.example.gov.vn",
            not_before=NOW - dt.timedelta(days=400),
            not_after=NOW - dt.timedelta(days=3, hours=1),
            issuer=ca,
        ),
        "soon": make("soon.example.gov.vn", not_after=NOW + dt.timedelta(days=10), issuer=ca),
        "rsa1024": make("weak.example.gov.vn", key=rsa_key(1024)),
        "rsa2048": make("rsa.example.gov.vn", key=rsa_key(2048), dns=("rsa.example.gov.vn",)),
        "ecp256": make("ec.example.gov.vn", key=ec_key(), ips=("192.0.2.7",)),
        "sha1": sha1_signed("sha1.example.gov.vn", rsa_key(2048)),
    }
    for name, made in cases.items():
        _write(tmp_path, f"/etc/nginx/ssl/{name}.pem", made.pem() + made.key_pem())
    document = _built(_ctx(tmp_path, certificate_paths=("/etc/nginx/**/*.pem",)))
    assert document["errors"] == []
    by_name = {item["path"].rsplit("/", 1)[1][:-4]: item for item in document["certificates"]}
    assert set(by_name) == set(cases)  # private keys in the same file are not certificates

    common = {"self_signed": False, "is_ca": False, "signature_hash": "sha256"}
    rsa_sig = "sha256WithRSAEncryption"
    ec_sig = "ecdsa-with-SHA256"
    specific: dict[str, dict[str, Any]] = {
        "expired": {
            **common,
            "days_left": -4,
            "key_type": "EC",
            "key_bits": 256,
            "curve": "secp256r1",
            "signature_algorithm": rsa_sig,
        },
        "soon": {
            **common,
            "days_left": 10,
            "key_type": "EC",
            "key_bits": 256,
            "curve": "secp256r1",
            "signature_algorithm": rsa_sig,
        },
        "rsa1024": {
            **common,
            "days_left": 365,
            "key_type": "RSA",
            "key_bits": 1024,
            "curve": None,
            "signature_algorithm": rsa_sig,
            "self_signed": True,
        },
        "rsa2048": {
            **common,
            "days_left": 365,
            "key_type": "RSA",
            "key_bits": 2048,
            "curve": None,
            "signature_algorithm": rsa_sig,
            "self_signed": True,
            "san": ["rsa.example.gov.vn"],
        },
        "ecp256": {
            **common,
            "days_left": 365,
            "key_type": "EC",
            "key_bits": 256,
            "curve": "secp256r1",
            "signature_algorithm": ec_sig,
            "self_signed": True,
            "san": ["192.0.2.7"],
        },
        "sha1": {
            **common,
            "days_left": 365,
            "key_type": "RSA",
            "key_bits": 2048,
            "curve": None,
            "signature_algorithm": "sha1WithRSAEncryption",
            "signature_hash": "sha1",
            "self_signed": True,
        },
    }
    for name, made in cases.items():
        path = f"/etc/nginx/ssl/{name}.pem"
        assert by_name[name] == _expected(made, f"{path}#0", path, 0, **specific[name]), name
    validate(document)


def _built(ctx: CollectContext) -> dict[str, Any]:
    """The facts document of the certificates domain as the agent builds it, at NOW:
    the ages (`days_left`) are there, derived from `not_after`."""
    return collect_facts(ctx, Identity("t", 1), domains=[Domain.CERTIFICATES], now=lambda: NOW)


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


def test_chain_bundle_der_and_the_ca_store_excluded(tmp_path: Path) -> None:
    root_ca = make("Root CA", ca=True, serial=1)
    intermediate = make("Intermediate CA", ca=True, issuer=root_ca, serial=2)
    leaf = make("portal.example.gov.vn", issuer=intermediate, dns=("portal.example.gov.vn",))
    bundle = leaf.pem() + intermediate.pem() + root_ca.pem()
    _write(tmp_path, "/etc/letsencrypt/live/portal/fullchain.pem", bundle)
    _write(tmp_path, "/etc/pki/tls/certs/portal.crt", leaf.der())
    _write(tmp_path, "/etc/ssl/certs/ca-certificates.crt", root_ca.pem())  # system store
    _write(tmp_path, "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", root_ca.pem())
    _write(tmp_path, "/etc/ssl/private/portal.pem", leaf.key_pem())  # a key, no certificate
    (tmp_path / "etc/ssl/portal-link.pem").symlink_to(
        tmp_path / "etc/ssl/certs/ca-certificates.crt"
    )

    items = collect_certificates(_ctx(tmp_path)).data
    locations = [i["location"] for i in items]
    assert locations == [
        "/etc/letsencrypt/live/portal/fullchain.pem#0",
        "/etc/letsencrypt/live/portal/fullchain.pem#1",
        "/etc/letsencrypt/live/portal/fullchain.pem#2",
        "/etc/pki/tls/certs/portal.crt#0",
    ]
    chain = items[:3]
    assert [c["chain_position"] for c in chain] == [0, 1, 2]
    assert [c["is_ca"] for c in chain] == [False, True, True]
    assert [c["self_signed"] for c in chain] == [False, False, True]
    assert chain[0]["issuer"] == "CN=Intermediate CA"
    assert items[3]["fingerprint_sha256"] == chain[0]["fingerprint_sha256"]  # DER = same leaf


def test_unreadable_files_are_one_permission_entry() -> None:
    # Under a directory every user can traverse (pytest's tmp_path is private to root).
    tmp_path = Path(tempfile.mkdtemp(prefix="canhgac-certs-", dir="/tmp"))
    os.chmod(tmp_path, 0o755)
    try:
        _unreadable(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _unreadable(tmp_path: Path) -> None:
    made = make("private.example.gov.vn")
    _write(tmp_path, "/etc/nginx/a.pem", made.pem())
    _write(tmp_path, "/etc/nginx/b.pem", made.pem())
    for name in ("a.pem", "b.pem"):
        os.chmod(tmp_path / "etc/nginx" / name, 0o600)
    for directory in (tmp_path / "etc", tmp_path / "etc/nginx"):
        os.chmod(directory, 0o755)

    def run() -> Any:
        collected = collect_certificates(_ctx(tmp_path))
        return [collected.data, [(i.kind.value, i.reason) for i in collected.issues]]

    data, issues = as_unprivileged(run)
    if os.geteuid() != 0:
        pytest.skip("needs root to create files another user cannot read")
    assert data == []
    assert issues == [  # JSON from the child: lists, not tuples
        [
            ErrorKind.PERMISSION.value,
            "2 certificate file(s) not readable; run as root: /etc/nginx/a.pem, /etc/nginx/b.pem",
        ]
    ]


def test_load_certificates_skips_damaged_blocks() -> None:
    good = make("good.example")
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert [c.subject.rfc4514_string() for c in load_certificates(broken + good.pem())] == [
        "CN=good.example"
    ]
    assert load_certificates(b"not a certificate") == []


def test_name_matching() -> None:
    cert = make("x", dns=("*.example.gov.vn", "example.gov.vn"), ips=("127.0.0.1",)).cert
    assert name_matches(cert, "portal.example.gov.vn")
    assert name_matches(cert, "EXAMPLE.gov.vn.")
    assert not name_matches(cert, "a.b.example.gov.vn")  # one label only
    assert name_matches(cert, "127.0.0.1") and not name_matches(cert, "127.0.0.2")
    cn_only = make("legacy.example.gov.vn").cert
    assert name_matches(cn_only, "legacy.example.gov.vn")


def test_days_left_counts_down(tmp_path: Path) -> None:
    # Computed by rules.derived from not_after, not by the collector.
    made = make("x", not_after=NOW + dt.timedelta(days=10, hours=-1))
    _write(tmp_path, "/etc/nginx/x.pem", made.pem())
    (item,) = collect_certificates(_ctx(tmp_path)).data
    assert item["not_after"] == "2026-12-07T07:00:00Z"
    assert "days_left" not in item
    assert "days_left" not in vars(describe(made.cert))
    (built,) = _built(_ctx(tmp_path))["certificates"]
    assert built["days_left"] == 9  # 9 days and 23 hours: floored


@pytest.mark.parametrize(
    ("value", "expected"),
    [("portal.example.gov.vn:443", ("portal.example.gov.vn", 443)), ("[::1]:8443", ("::1", 8443))],
)
def test_parse_endpoint(value: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(value) == expected


@pytest.mark.parametrize("value", ["portal", "host:0", "host:99999", ":443"])
def test_parse_endpoint_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        parse_endpoint(value)


# A real TLS server on loopback ----------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Made, Made]]:
    ca = make("Loopback Test CA", ca=True, serial=7)
    leaf = make("localhost", issuer=ca, dns=("localhost",), ips=("127.0.0.1",), serial=8)
    (tmp_path / "chain.pem").write_bytes(leaf.pem() + ca.pem())
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], leaf, ca
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_real_tls_server_found_through_its_listening_socket(
    tls_server: tuple[int, Made, Made], tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    port, leaf, ca = tls_server
    ctx = CollectContext(
        root=tmp_path,  # no certificate files: only the endpoint
        run=RecordedRunner(),  # the real system facade: the socket is found by psutil
        settings=CollectSettings(certificate_paths=()),
        now=lambda: NOW,
        fqdn_resolver=lambda _name: "localhost",  # the name the test certificate covers
    )
    items = [i for i in collect_certificates(ctx).data if i["port"] == port]
    assert [i["location"] for i in items] == [f"127.0.0.1:{port}#0", f"127.0.0.1:{port}#1"]
    first, second = items
    assert first["source"] == "endpoint" and first["path"] is None
    assert (first["address"], first["exposure"]) == ("127.0.0.1", "loopback")
    assert first["fingerprint_sha256"] == hashlib.sha256(leaf.der()).hexdigest()
    assert second["fingerprint_sha256"] == hashlib.sha256(ca.der()).hexdigest()
    assert (first["chain_position"], second["chain_position"]) == (0, 1)
    assert first["subject"] == "CN=localhost" and second["is_ca"] is True
    assert first["tls_version"] in ("TLSv1.2", "TLSv1.3")
    # A private CA the system does not trust: read, but not verified.
    assert first["chain_verified"] is False
    assert first["verify_error"]
    assert first["accepts_tls10"] is not True and first["accepts_tls11"] is not True
    assert (first["hostname_matches"], second["hostname_matches"]) == (True, None)
    assert (first["reachable"], first["reason"]) == (True, None)
    validate(_document(items))


def test_configured_endpoint_is_probed_with_its_name(tls_server: tuple[int, Made, Made]) -> None:
    port, _leaf, _ca = tls_server
    ctx = CollectContext(
        root=Path("/nonexistent"),
        run=RecordedRunner(),
        system=FakeSystem(),
        settings=CollectSettings(
            certificate_paths=(), tls_endpoints=(f"localhost:{port}",), probe_listeners=False
        ),
        now=lambda: NOW,
    )
    items = collect_certificates(ctx).data
    assert items[0]["location"] == f"localhost:{port}#0"
    assert items[0]["exposure"] is None and items[0]["hostname_matches"] is True
