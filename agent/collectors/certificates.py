"""The `certificates` domain: X.509 certificates in files and presented by endpoints.

Files: the configured paths and globs (`agent.certificate_paths`), by default the
usual places of nginx, Apache, Let's Encrypt, /etc/ssl and /etc/pki, without the
system CA store (hundreds of root certificates nobody on the host manages). Endpoints:
every TCP listener of the host, tried on the loopback or its own address with a short
TLS handshake, plus the configured remote endpoints (`agent.tls_endpoints`). Each
certificate of a file or of a presented chain is one item, located as `path#index`
or `address:port#index`.

A configured endpoint that yields no certificate is one item too, located as
`address:port`, with `reachable: false` and the probe's `reason`: the administrator
asked for it, so its silence is news. A local listener that does not complete a TLS
handshake is not: most listeners (SSH, databases) do not speak TLS at all.

`hostname_matches`: a configured endpoint's certificate against the name configured;
a listener's against every name the host is known by (`localnames`: host name, FQDN,
/etc/hosts, the web servers' virtual hosts), so a virtual host's certificate is not a
mismatch and a certificate naming none of them is.

Probing has a bounded share of the domain's budget, because any local user can open
listeners: the configured endpoints first, then at most `MAX_LOCAL_PROBES` local
listeners a cycle (privileged ports first, which only root can open; then system
accounts' listeners; ordinary users' last), each handshake bounded by
`LOCAL_PROBE_TIMEOUT`, all probes within `PROBE_DEADLINE`. Endpoints left unprobed are
named in one `errors` entry of kind `skipped`; the certificate files, read first, are
always returned.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    read_bytes_at,
)
from agent.collectors.certparse import CertificateFacts, describe, load_certificates, name_matches
from agent.collectors.listening import exposure, is_listener
from agent.collectors.localnames import local_names as known_names
from agent.collectors.tlsprobe import Probe, ProbeFailure, run_within

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
PROBE_TIMEOUT = 2.0  # per handshake to a configured (possibly remote) endpoint
LOCAL_PROBE_TIMEOUT = 2.0  # per handshake on the host itself; loaded hosts answer slowly
PROBE_WORKERS = 16
MAX_LOCAL_PROBES = 96  # local listeners probed a cycle; configured endpoints come first
# All probing, well inside the domain's budget (registry.BUDGETS): a probe still in
# flight at the deadline ends on its own handshake timeout, abandoned.
PROBE_DEADLINE = 15.0
# Kept back from what remains of the collector's budget when that is shorter than
# PROBE_DEADLINE: the time to turn the answers into items before being abandoned.
PROBE_MARGIN = 0.5
FIRST_USER_UID = 1000  # UID_MIN of Debian's and RHEL's login.defs
MAX_NAMED_SKIPS = 20  # endpoints named in the `skipped` entry; the rest are counted


def collect_certificates(ctx: CollectContext) -> Collected:
    """Certificate items, each with `not_after`: rules.derived makes it `days_left` in
    the document."""
    issues: list[Issue] = []
    items = _from_files(ctx, issues)
    items += _from_endpoints(ctx, issues)
    if len(items) > MAX_CERTIFICATES:
        issues.append(Issue(ErrorKind.FAILED, f"{len(items)} certificates; list truncated"))
    facts = [item.to_fact() for item in items[:MAX_CERTIFICATES]]
    return Collected(facts, tuple(issues))


@dataclass(frozen=True)
class EndpointFacts:
    """What the handshakes to an endpoint told about it (null for file certificates)."""

    exposure: str | None
    tls_version: str | None
    chain_verified: bool | None
    verify_error: str | None
    hostname_matches: bool | None
    accepts_tls10: bool | None
    accepts_tls11: bool | None


_NO_ENDPOINT = EndpointFacts(None, None, None, None, None, None, None)


@dataclass(frozen=True)
class CertificateItem:
    """One certificate of a file or of a presented chain (schema: certificate)."""

    location: str
    source: str  # "file" or "endpoint"
    path: str | None
    address: str | None
    port: int | None
    chain_position: int
    certificate: CertificateFacts
    endpoint: EndpointFacts

    def to_fact(self) -> dict[str, Any]:
        cert, endpoint = self.certificate, self.endpoint
        return {
            "location": self.location,
            "source": self.source,
            "path": self.path,
            "address": self.address,
            "port": self.port,
            "chain_position": self.chain_position,
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serial": cert.serial,
            "san": list(cert.san),
            "not_before": cert.not_before,
            "not_after": cert.not_after,
            "key_type": cert.key_type,
            "key_bits": cert.key_bits,
            "curve": cert.curve,
            "signature_algorithm": cert.signature_algorithm,
            "signature_hash": cert.signature_hash,
            "self_signed": cert.self_signed,
            "is_ca": cert.is_ca,
            "fingerprint_sha256": cert.fingerprint_sha256,
            "exposure": endpoint.exposure,
            "tls_version": endpoint.tls_version,
            "chain_verified": endpoint.chain_verified,
            "verify_error": endpoint.verify_error,
            "hostname_matches": endpoint.hostname_matches,
            "accepts_tls10": endpoint.accepts_tls10,
            "accepts_tls11": endpoint.accepts_tls11,
            # Files are not reached; an endpoint item with a certificate was.
            "reachable": True if self.source == "endpoint" else None,
            "reason": None,
        }


@dataclass(frozen=True)
class UnreachableEndpoint:
    """A configured endpoint that yielded no certificate, and why (schema: certificate)."""

    location: str
    address: str
    port: int
    failure: ProbeFailure

    def to_fact(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "source": "endpoint",
            "path": None,
            "address": self.address,
            "port": self.port,
            "reachable": False,
            "reason": {"kind": self.failure.kind.value, "detail": clip(self.failure.detail, 512)},
        }


Item = CertificateItem | UnreachableEndpoint


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


def _from_files(ctx: CollectContext, issues: list[Issue]) -> list[Item]:
    configured = ctx.settings.certificate_paths
    patterns = DEFAULT_PATHS if configured is None else configured
    items: list[Item] = []
    denied: list[str] = []
    for path in candidate_files(ctx, patterns):
        host = _host_path(ctx, path)
        try:
            data = read_bytes_at(path, host, MAX_FILE_BYTES)
        except CollectorError as e:
            if e.kind is ErrorKind.PERMISSION:
                denied.append(host)  # one entry for all of them: often every key and cert
            else:
                issues.append(e.issue)
            continue
        for index, cert in enumerate(load_certificates(data or b"")):
            items.append(
                CertificateItem(
                    location=clip(f"{host}#{index}", 4096),
                    source="file",
                    path=clip(host, 4096),
                    address=None,
                    port=None,
                    chain_position=index,
                    certificate=describe(cert),
                    endpoint=_NO_ENDPOINT,
                )
            )
    if denied:
        issues.append(
            Issue(
                ErrorKind.PERMISSION,
                clip(
                    f"{len(denied)} certificate file(s) not readable; run as root: "
                    + ", ".join(denied),
                    4096,
                ),
            )
        )
    return items


class Target(NamedTuple):
    """One endpoint to probe: where to connect, and how to report and name it."""

    connect: str  # the address dialled (loopback for a wildcard listener)
    address: str  # the address reported (the listener's bound address, or the host)
    port: int
    exposure: str | None  # from the listener; None for remote endpoints
    sni: str | None  # server name sent, and matched against the certificate


def _local_targets(ctx: CollectContext, hostname: str) -> list[Target]:
    """Every TCP listener of the host, dialled on loopback or its own address, in the
    order they are worth probing (see `_rank`)."""
    targets: dict[tuple[str, int], tuple[tuple[bool, int], Target]] = {}
    owners: dict[int | None, int] = {}
    for row in ctx.system.inet_sockets():
        if row.type != socket.SOCK_STREAM or not is_listener(row):
            continue
        kind = exposure(row.address)
        v6 = row.family == socket.AF_INET6
        connect = ("::1" if v6 else "127.0.0.1") if kind == "all" else row.address.split("%")[0]
        if row.pid not in owners:
            owners[row.pid] = _owner_class(ctx, row.pid)
        targets.setdefault(
            (row.address, row.port),
            (
                (row.port >= 1024, owners[row.pid]),
                Target(connect, row.address, row.port, kind, hostname),
            ),
        )
    ranked = sorted(targets.values(), key=lambda r: (r[0], r[1].port, r[1].address))
    return [target for _, target in ranked]


def _owner_class(ctx: CollectContext, pid: int | None) -> int:
    """0: a system account's process (uid < 1000: root, daemons); 1: not visible;
    2: an ordinary user's. Ordinary users' listeners are probed last, so that one of
    them opening many cannot crowd out the services', even on high ports."""
    if pid is None:
        return 1
    try:
        uid = ctx.path(f"/proc/{pid}").stat().st_uid  # owned by the process's uid
    except OSError:
        return 1
    return 0 if uid < FIRST_USER_UID else 2


def parse_endpoint(value: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"invalid TLS endpoint {value!r}: expected host:port")
    return host.strip("[]"), int(port)


def _from_endpoints(ctx: CollectContext, issues: list[Issue]) -> list[Item]:
    hostname = ctx.system.uname().node or "localhost"
    configured: list[Target] = []
    for endpoint in ctx.settings.tls_endpoints:
        try:
            host, port = parse_endpoint(endpoint)
        except ValueError as e:
            issues.append(Issue(ErrorKind.FAILED, str(e)))
            continue
        configured.append(Target(host, host, port, None, None if _is_ip(host) else host))
    local: list[Target] = []
    if ctx.settings.probe_listeners:
        try:
            local = _local_targets(ctx, hostname)
        except Exception as e:  # noqa: BLE001 - file certificates are still worth reporting
            issues.append(Issue(ErrorKind.FAILED, f"listeners: {type(e).__name__}: {e}"))
    # The administrator asked for the configured ones; the local ones come ranked.
    over_cap = local[MAX_LOCAL_PROBES:]
    targets = configured + local[:MAX_LOCAL_PROBES]
    if not targets:
        return []
    # Handshakes wait on the network, not the CPU: probe in parallel, each one bounded,
    # all of them within the deadline, which never outlasts the collector's budget.
    deadline = probe_deadline(ctx.seconds_left())
    found_or_none = run_within(
        [
            partial(
                ctx.tls_prober,
                t.connect,
                t.port,
                t.sni,
                PROBE_TIMEOUT if t.exposure is None else LOCAL_PROBE_TIMEOUT,
            )
            for t in targets
        ],
        PROBE_WORKERS,
        deadline,
    )
    late = [t for t, f in zip(targets, found_or_none, strict=True) if f is None]
    if late or over_cap:
        issues.append(_skipped_issue(late, over_cap, len(configured) + len(local), deadline))
    answered = {t: f for t, f in zip(targets, found_or_none, strict=True) if f is not None}
    # Items keep the order of the report: local listeners by port, then configured.
    probed_local = sorted(local[:MAX_LOCAL_PROBES], key=lambda t: (t.port, t.address))
    done = [(t, answered[t]) for t in probed_local + configured if t in answered]
    # A local listener matches when its certificate covers the host's name or FQDN
    # (resolved only when some local listener speaks TLS: it may take a DNS lookup).
    local_names = [hostname]
    if any(isinstance(f, Probe) and t.exposure is not None for t, f in done):
        try:
            fqdn = ctx.fqdn_resolver(hostname)
        except Exception:  # noqa: BLE001 - a broken resolver only costs the FQDN match
            fqdn = None
        if fqdn:
            local_names.append(fqdn)
        # Virtual hosts: a certificate naming a name served here is not a mismatch.
        local_names = known_names(ctx, local_names, issues)
    items: list[Item] = []
    for target, found in done:
        if isinstance(found, Probe):
            names = local_names if target.exposure is not None else [target.sni or target.address]
            items += _endpoint_items(found, target, names)
        elif target.exposure is None:  # configured, so its silence is news
            items.append(
                UnreachableEndpoint(
                    clip(_where(target), 4096), clip(target.address, 256), target.port, found
                )
            )
    return items


def probe_deadline(seconds_left: float | None) -> float:
    """Seconds all probes may take: PROBE_DEADLINE, or less when the collector's budget
    has less left (minus PROBE_MARGIN to build the items)."""
    if seconds_left is None:
        return PROBE_DEADLINE
    return max(0.0, min(PROBE_DEADLINE, seconds_left - PROBE_MARGIN))


def _skipped_issue(
    late: list[Target], over_cap: list[Target], total: int, deadline: float
) -> Issue:
    """One `skipped` entry naming the endpoints whose certificates were not read."""
    why = []
    if over_cap:
        why.append(f"{len(over_cap)} beyond the cap of {MAX_LOCAL_PROBES} local listeners")
    if late:
        why.append(f"{len(late)} not answered within the {deadline:.3g}s probing deadline")
    skipped = late + over_cap
    named = ", ".join(_where(t) for t in skipped[:MAX_NAMED_SKIPS])
    more = f" and {len(skipped) - MAX_NAMED_SKIPS} more" if len(skipped) > MAX_NAMED_SKIPS else ""
    return Issue(
        ErrorKind.SKIPPED,
        clip(
            f"{len(skipped)} of {total} TLS endpoints not probed ({'; '.join(why)}): {named}{more}",
            4096,
        ),
    )


def _where(target: Target) -> str:
    address, port = target.address, target.port
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoint_items(found: Probe, target: Target, names: list[str]) -> list[Item]:
    where = _where(target)
    items: list[Item] = []
    for index, der in enumerate(found.chain):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        items.append(
            CertificateItem(
                location=clip(f"{where}#{index}", 4096),
                source="endpoint",
                path=None,
                address=clip(target.address, 256),
                port=target.port,
                chain_position=index,
                certificate=describe(cert),
                endpoint=EndpointFacts(
                    exposure=target.exposure,
                    tls_version=found.tls_version,
                    chain_verified=found.chain_verified,
                    verify_error=found.verify_error,
                    hostname_matches=(
                        any(name_matches(cert, n) for n in names) if index == 0 else None
                    ),
                    accepts_tls10=found.accepts_tls10,
                    accepts_tls11=found.accepts_tls11,
                ),
            )
        )
    return items
