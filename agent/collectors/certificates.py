"""The `certificates` domain: X.509 certificates in files and presented by endpoints.

Files: the configured paths and globs (`agent.certificate_paths`), by default the
usual places of nginx, Apache, Let's Encrypt, /etc/ssl and /etc/pki, without the
system CA store (hundreds of root certificates nobody on the host manages). Endpoints:
every TCP listener of the host, tried on the loopback or its own address with a short
TLS handshake, plus the configured remote endpoints (`agent.tls_endpoints`). Each
certificate of a file or of a presented chain is one item, located as `path#index`
or `address:port#index`.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from agent.collectors.base import (
    CollectContext,
    Collected,
    ErrorKind,
    Issue,
    clip,
    describe_os_error,
)
from agent.collectors.certparse import describe, load_certificates, name_matches
from agent.collectors.listening import exposure, is_listener
from agent.collectors.tlsprobe import Probe, probe

DEFAULT_PATHS = (
    "/etc/letsencrypt/live/*/fullchain.pem",
    "/etc/nginx/**/*.crt",
    "/etc/nginx/**/*.pem",
    "/etc/apache2/**/*.crt",
    "/etc/apache2/**/*.pem",
    "/etc/httpd/**/*.crt",
    "/etc/httpd/**/*.pem",
    "/etc/ssl/**/*.crt",
    "/etc/ssl/**/*.pem",
    "/etc/ssl/**/*.cer",
    "/etc/pki/**/*.crt",
    "/etc/pki/**/*.pem",
    "/etc/pki/**/*.cer",
)
# The system trust stores: excluded from the defaults, and from any glob.
EXCLUDED = (
    "/etc/ssl/certs",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/tls/certs/ca-bundle.trust.crt",
    "/etc/pki/tls/cert.pem",
    "/etc/pki/java",
    "/usr/share/ca-certificates",
    "/usr/share/pki",
)
MAX_FILES = 2000
MAX_FILE_BYTES = 1024 * 1024
MAX_CERTIFICATES = 5000
PROBE_TIMEOUT = 2.0
PROBE_WORKERS = 16


def collect_certificates(ctx: CollectContext) -> Collected:
    now = ctx.now()
    issues: list[Issue] = []
    items = _from_files(ctx, now, issues)
    items += _from_endpoints(ctx, now, issues)
    if len(items) > MAX_CERTIFICATES:
        issues.append(Issue(ErrorKind.FAILED, f"{len(items)} certificates; list truncated"))
    return Collected(items[:MAX_CERTIFICATES], tuple(issues))


def _host_path(ctx: CollectContext, path: Path) -> str:
    return "/" + str(path.relative_to(ctx.root)).lstrip("/") if ctx.root != Path("/") else str(path)


def _excluded(host_path: str) -> bool:
    return any(host_path == e or host_path.startswith(e + "/") for e in EXCLUDED)


def candidate_files(ctx: CollectContext, patterns: tuple[str, ...]) -> list[Path]:
    files: dict[str, Path] = {}
    for pattern in patterns:
        relative = pattern.lstrip("/")
        try:
            matches = (
                sorted(ctx.root.glob(relative))
                if any(c in relative for c in "*?[")
                else [ctx.root / relative]
            )
        except (OSError, ValueError):
            continue
        for path in matches:
            host = _host_path(ctx, path)
            if _excluded(host) or host in files:
                continue
            try:
                real = os.path.realpath(path)
                if not path.is_file() or _excluded(_host_path(ctx, Path(real))):
                    continue
            except (OSError, ValueError):
                continue
            files[host] = path
            if len(files) >= MAX_FILES:
                return list(files.values())
    return list(files.values())


def _from_files(ctx: CollectContext, now: datetime, issues: list[Issue]) -> list[dict[str, Any]]:
    configured = ctx.settings.certificate_paths
    patterns = DEFAULT_PATHS if configured is None else configured
    items: list[dict[str, Any]] = []
    denied = 0
    for path in candidate_files(ctx, patterns):
        host = _host_path(ctx, path)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES)
        except PermissionError:
            denied += 1
            continue
        except OSError as e:
            issues.append(Issue(describe_os_error(e)[0], f"{host}: {e.strerror or e}"))
            continue
        for index, cert in enumerate(load_certificates(data)):
            items.append(
                {
                    "location": clip(f"{host}#{index}", 4096),
                    "source": "file",
                    "path": clip(host, 4096),
                    "address": None,
                    "port": None,
                    "chain_position": index,
                    **describe(cert, now),
                    **_no_endpoint(),
                }
            )
    if denied:
        issues.append(
            Issue(ErrorKind.PERMISSION, f"{denied} certificate file(s) not readable; run as root")
        )
    return items


def _no_endpoint() -> dict[str, Any]:
    return {
        "exposure": None,
        "tls_version": None,
        "chain_verified": None,
        "verify_error": None,
        "hostname_matches": None,
        "accepts_tls10": None,
        "accepts_tls11": None,
    }


class Target(NamedTuple):
    """One endpoint to probe: where to connect, and how to report and name it."""

    connect: str  # the address dialled (loopback for a wildcard listener)
    address: str  # the address reported (the listener's bound address, or the host)
    port: int
    exposure: str | None  # from the listener; None for remote endpoints
    sni: str | None  # server name sent, and matched against the certificate


def _local_targets(ctx: CollectContext, hostname: str) -> list[Target]:
    """Every TCP listener of the host, dialled on loopback or its own address."""
    targets: dict[tuple[str, int], Target] = {}
    for row in ctx.system.inet_sockets():
        if row.type != socket.SOCK_STREAM or not is_listener(row):
            continue
        kind = exposure(row.address)
        v6 = row.family == socket.AF_INET6
        connect = ("::1" if v6 else "127.0.0.1") if kind == "all" else row.address.split("%")[0]
        targets.setdefault(
            (row.address, row.port), Target(connect, row.address, row.port, kind, hostname)
        )
    return sorted(targets.values(), key=lambda t: (t.port, t.address))


def parse_endpoint(value: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"invalid TLS endpoint {value!r}: expected host:port")
    return host.strip("[]"), int(port)


def _from_endpoints(
    ctx: CollectContext, now: datetime, issues: list[Issue]
) -> list[dict[str, Any]]:
    hostname = ctx.system.uname().node or "localhost"
    targets: list[Target] = []
    if ctx.settings.probe_listeners:
        try:
            targets += _local_targets(ctx, hostname)
        except Exception as e:  # noqa: BLE001 - file certificates are still worth reporting
            issues.append(Issue(ErrorKind.FAILED, f"listeners: {type(e).__name__}: {e}"))
    for endpoint in ctx.settings.tls_endpoints:
        try:
            host, port = parse_endpoint(endpoint)
        except ValueError as e:
            issues.append(Issue(ErrorKind.FAILED, str(e)))
            continue
        targets.append(Target(host, host, port, None, None if _is_ip(host) else host))
    if not targets:
        return []
    # Handshakes wait on the network, not the CPU: probe in parallel, each one bounded.
    with ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(targets))) as pool:
        results = list(pool.map(lambda t: probe(t.connect, t.port, t.sni, PROBE_TIMEOUT), targets))
    # A local listener matches when its certificate covers the host's name or FQDN
    # (resolved only when some local listener speaks TLS: it may take a DNS lookup).
    local_names = [hostname]
    if any(f is not None and t.exposure is not None for t, f in zip(targets, results, strict=True)):
        try:
            fqdn = ctx.fqdn_resolver(hostname)
        except Exception:  # noqa: BLE001 - a broken resolver only costs the FQDN match
            fqdn = None
        if fqdn:
            local_names.append(fqdn)
    items: list[dict[str, Any]] = []
    for target, found in zip(targets, results, strict=True):
        if found is not None:
            names = local_names if target.exposure is not None else [target.sni or target.address]
            items += _endpoint_items(found, target, names, now)
    return items


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoint_items(
    found: Probe, target: Target, names: list[str], now: datetime
) -> list[dict[str, Any]]:
    from cryptography import x509

    address, port = target.address, target.port
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    items = []
    for index, der in enumerate(found.chain):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        items.append(
            {
                "location": clip(f"{where}#{index}", 4096),
                "source": "endpoint",
                "path": None,
                "address": clip(address, 256),
                "port": port,
                "chain_position": index,
                **describe(cert, now),
                "exposure": target.exposure,
                "tls_version": found.tls_version,
                "chain_verified": found.chain_verified,
                "verify_error": found.verify_error,
                "hostname_matches": (
                    any(name_matches(cert, n) for n in names) if index == 0 else None
                ),
                "accepts_tls10": found.accepts_tls10,
                "accepts_tls11": found.accepts_tls11,
            }
        )
    return items
