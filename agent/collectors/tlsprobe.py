"""Short TLS handshakes to read what an endpoint presents.

Reading the certificate needs no verification, so the first handshake accepts
anything; a second one checks the chain against the system trust store; two more
(only when this OpenSSL can still offer them) ask whether TLS 1.0 and 1.1 are
accepted. Each handshake is bounded by `timeout`; a port that does not speak TLS just
yields None.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    chain: tuple[bytes, ...]  # DER, leaf first, as the server sent it
    tls_version: str | None
    chain_verified: bool | None
    verify_error: str | None
    accepts_tls10: bool | None
    accepts_tls11: bool | None


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


def _reading_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading, not trusting: any certificate will do
    return context


def probe(host: str, port: int, sni: str | None, timeout: float = 2.0) -> Probe | None:
    """What `host:port` presents over TLS, or None when it does not complete a handshake."""
    try:
        with _handshake(_reading_context(), host, port, sni, timeout) as tls:
            version = tls.version()
            chain = _unverified_chain(tls)
    except (OSError, ssl.SSLError, ValueError):
        return None
    if not chain:
        return None
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
    context = ssl.create_default_context()
    context.check_hostname = False  # the name is judged separately (hostname_matches)
    try:
        with _handshake(context, host, port, sni, timeout):
            return True, None
    except ssl.SSLCertVerificationError as e:
        return False, (e.verify_message or str(e))[:512]
    except (OSError, ssl.SSLError, ValueError):
        return None, None


def _accepts(
    host: str, port: int, sni: str | None, timeout: float, version: ssl.TLSVersion
) -> bool | None:
    context = _reading_context()
    try:
        # Old protocols need the lowest security level to be offered at all.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
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
