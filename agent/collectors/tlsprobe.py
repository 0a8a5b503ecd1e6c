"""Short TLS handshakes to read what an endpoint presents.

Reading the certificate needs no verification, so the first handshake accepts
anything, including TLS 1.0/1.1 and weak keys: a listener that speaks only an old
protocol must still be reported with its certificate and protocol, and OpenSSL's
default security level would refuse the handshake before we see either. A second
handshake checks the chain against the system trust store; two more (only when this
OpenSSL can still offer them) ask whether TLS 1.0 and 1.1 are accepted. Each handshake
is bounded by `timeout`.

A probe that cannot read a certificate says why, as a `ProbeFailure`: the caller
decides whether that is news (a configured endpoint that is down) or expected (a
local listener that does not speak TLS).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

# OpenSSL 3 refuses servers without RFC 5746 secure renegotiation (servers from before
# 2010, the very ones worth reporting); Python < 3.12 has no name for the option bit.
_OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
MAX_DETAIL = 512

# OpenSSL reasons (ssl.SSLError.reason) grouped by what they tell an administrator.
_TOO_OLD = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "UNKNOWN_SSL_VERSION",
        "SSLV3_ALERT_ILLEGAL_PARAMETER_SSLV3",
    }
)
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.EHOSTDOWN}
)


class FailureKind(StrEnum):
    """Why a probe read no certificate (schema: certificate.reason.kind)."""

    REFUSED = "refused"  # nothing listens there (the port answered with a reset)
    TIMEOUT = "timeout"  # no answer in time: filtered, or a service that stays silent
    UNREACHABLE = "unreachable"  # the name does not resolve, or no route to the host
    RESET = "reset"  # the peer closed the connection during the handshake
    NOT_TLS = "not_tls"  # the peer answered, but not with TLS
    PROTOCOL_TOO_OLD = "protocol_too_old"  # it speaks only a protocol this OpenSSL cannot
    HANDSHAKE_FAILED = "handshake_failed"  # a TLS alert or error (the detail names it)
    NO_CERTIFICATE = "no_certificate"  # a handshake without a certificate (anonymous suites)
    FAILED = "failed"  # anything else (the detail says what)


@dataclass(frozen=True)
class ProbeFailure:
    """A probe that read no certificate, and why."""

    kind: FailureKind
    detail: str


@dataclass(frozen=True)
class Probe:
    """What an endpoint presented."""

    chain: tuple[bytes, ...]  # DER, leaf first, as the server sent it
    tls_version: str | None
    chain_verified: bool | None
    verify_error: str | None
    accepts_tls10: bool | None
    accepts_tls11: bool | None


# (connect address, port, server name or None, timeout seconds) -> what was found.
TlsProber = Callable[[str, int, str | None, float], Probe | ProbeFailure]

T = TypeVar("T")


def run_within(jobs: Sequence[Callable[[], T]], workers: int, deadline: float) -> list[T | None]:
    """Each job's result, in order; None for a job that had not finished `deadline`
    seconds from now (never started, or still waiting on its peer).

    Jobs start in the order given, so the caller puts first what matters most. The
    pool is left behind at the deadline, not joined: a job still running ends on its
    own per-handshake timeout, and the ones never started are cancelled.
    """
    if not jobs:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))))
    futures: list[Future[T]] = [pool.submit(job) for job in jobs]
    try:
        wait(futures, timeout=max(0.0, deadline))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [f.result() if f.done() and not f.cancelled() else None for f in futures]


def _handshake(
    context: ssl.SSLContext, host: str, port: int, sni: str | None, timeout: float
) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        raw.settimeout(timeout)
        return context.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def _unverifying_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading, not trusting: any certificate will do
    # The lowest security level offers the old protocols' suites and accepts weak keys
    # and SHA-1 signatures: reporting them is the point, trusting them is not.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.options |= _OP_LEGACY_SERVER_CONNECT
    return context


def reading_context() -> ssl.SSLContext:
    """The context of the reading handshake: anything from TLS 1.0 to TLS 1.3."""
    context = _unverifying_context()
    with warnings.catch_warnings():
        # Deprecated on purpose: a server that speaks only TLS 1.0 must still be read.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Where this OpenSSL cannot offer TLS 1.0, such servers read as protocol_too_old.
        with contextlib.suppress(ValueError, ssl.SSLError):
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.options &= ~(ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1)
    return context


def classify(error: BaseException) -> ProbeFailure:
    """The failure kind and text of an exception raised by a handshake."""
    if isinstance(error, ssl.SSLError):
        reason = getattr(error, "reason", None) or ""  # absent when built by hand
        text = _clip(f"{reason}: {error.strerror or error}" if reason else str(error))
        if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return ProbeFailure(FailureKind.RESET, text)
        if reason in _TOO_OLD:
            return ProbeFailure(FailureKind.PROTOCOL_TOO_OLD, text)
        if reason in _NOT_TLS:
            return ProbeFailure(FailureKind.NOT_TLS, text)
        return ProbeFailure(FailureKind.HANDSHAKE_FAILED, text)
    if isinstance(error, socket.gaierror):
        return ProbeFailure(FailureKind.UNREACHABLE, _clip(f"name resolution: {error.strerror}"))
    if isinstance(error, ConnectionRefusedError):
        return ProbeFailure(FailureKind.REFUSED, _clip(error.strerror or str(error)))
    if isinstance(error, TimeoutError):
        return ProbeFailure(FailureKind.TIMEOUT, _clip(str(error) or "timed out"))
    if isinstance(error, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return ProbeFailure(FailureKind.RESET, _clip(error.strerror or str(error)))
    if isinstance(error, OSError) and error.errno in _UNREACHABLE_ERRNOS:
        return ProbeFailure(FailureKind.UNREACHABLE, _clip(error.strerror or str(error)))
    if isinstance(error, OSError):
        return ProbeFailure(FailureKind.FAILED, _clip(error.strerror or str(error)))
    return ProbeFailure(FailureKind.FAILED, _clip(f"{type(error).__name__}: {error}"))


def _clip(text: str) -> str:
    return text[:MAX_DETAIL]


def probe(host: str, port: int, sni: str | None, timeout: float = 2.0) -> Probe | ProbeFailure:
    """What `host:port` presents over TLS, or why nothing could be read."""
    try:
        with _handshake(reading_context(), host, port, sni, timeout) as tls:
            version = tls.version()
            chain = _unverified_chain(tls)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        return classify(e)
    if not chain:
        return ProbeFailure(FailureKind.NO_CERTIFICATE, "the handshake carried no certificate")
    verified, error = _verify(host, port, sni, timeout)
    return Probe(
        chain=chain,
        tls_version=version,
        chain_verified=verified,
        verify_error=error,
        accepts_tls10=_accepts(host, port, sni, timeout, ssl.TLSVersion.TLSv1),
        accepts_tls11=_accepts(host, port, sni, timeout, ssl.TLSVersion.TLSv1_1),
    )


def _unverified_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    # Python 3.13 has SSLSocket.get_unverified_chain(); 3.10-3.12 have it on the
    # internal object only. Without either, the leaf alone is reported.
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is not None:
        try:
            certs = getter() or []
            chain = tuple(
                c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in certs
            )
            if chain:
                return chain
        except (AttributeError, ValueError, ssl.SSLError):
            pass
    leaf = tls.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def _verify(
    host: str, port: int, sni: str | None, timeout: float
) -> tuple[bool | None, str | None]:
    # The system's default security level on purpose: "verified" means a client with
    # today's defaults would trust this chain. A server this context cannot talk to
    # (TLS 1.0 only) leaves the question unanswered (null), not failed.
    context = ssl.create_default_context()
    context.check_hostname = False  # the name is judged separately (hostname_matches)
    try:
        with _handshake(context, host, port, sni, timeout):
            return True, None
    except ssl.SSLCertVerificationError as e:
        return False, (e.verify_message or str(e))[:512]
    except (OSError, ValueError):
        return None, None


def _accepts(
    host: str, port: int, sni: str | None, timeout: float, version: ssl.TLSVersion
) -> bool | None:
    context = _unverifying_context()
    try:
        with warnings.catch_warnings():
            # Deprecated on purpose: asking for them is the point of the question.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version
    except (ValueError, ssl.SSLError):
        return None
    try:
        with _handshake(context, host, port, sni, timeout):
            return True
    except ssl.SSLError as e:
        # This side could not offer the version (OpenSSL built without it): unknown.
        if e.reason in ("NO_PROTOCOLS_AVAILABLE", "NO_SUPPORTED_VERSIONS_ENABLED"):
            return None
        return False
    except (OSError, ValueError):
        return None
