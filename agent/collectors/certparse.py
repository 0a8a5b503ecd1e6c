"""Reading X.509 certificates with `cryptography` (never by shelling out to openssl):
PEM files with one or several certificates, DER files, and the facts of each one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from agent.collectors.base import clip, rfc3339_utc

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----"
    rb".+?-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)
MAX_SAN = 1000


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in `data`: its PEM blocks in order, else `data` as one DER.

    Blocks that do not parse are skipped (a bundle with one damaged certificate still
    reports the others); other PEM blocks (keys, parameters) are ignored.
    """
    if b"-----BEGIN" in data:
        certificates = []
        for block in _PEM_BLOCK.findall(data):
            normalized = re.sub(rb"(X509|TRUSTED) CERTIFICATE", b"CERTIFICATE", block)
            try:
                certificates.append(x509.load_pem_x509_certificate(normalized))
            except ValueError:
                continue
        return certificates
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []


@dataclass(frozen=True)
class CertificateFacts:
    """The facts of one certificate, whatever its source (schema: certificate).

    Its age (`days_left`) is not here: rules.derived computes it from `not_after`.
    """

    subject: str
    issuer: str
    serial: str
    san: tuple[str, ...]
    not_before: str
    not_after: str
    key_type: str
    key_bits: int | None
    curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    self_signed: bool
    is_ca: bool
    fingerprint_sha256: str


def describe(cert: x509.Certificate) -> CertificateFacts:
    """The facts of one certificate (the fields every `certificates` item has)."""
    key_type, key_bits, curve = _key(cert)
    return CertificateFacts(
        subject=clip(cert.subject.rfc4514_string(), 1024),
        issuer=clip(cert.issuer.rfc4514_string(), 1024),
        serial=format(cert.serial_number, "x"),
        san=tuple(_san(cert)),
        not_before=rfc3339_utc(cert.not_valid_before_utc),
        not_after=rfc3339_utc(cert.not_valid_after_utc),
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=clip(_oid_name(cert.signature_algorithm_oid), 128),
        signature_hash=_signature_hash(cert),
        self_signed=_self_signed(cert),
        is_ca=_is_ca(cert),
        fingerprint_sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
    )


def _key(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # unsupported or malformed key: still a certificate
        return "other", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", None, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", None, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return "other", None, None


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", None)
    return name if isinstance(name, str) and name != "Unknown OID" else oid.dotted_string


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - an unknown algorithm is reported as unknown
        return None
    return algorithm.name if algorithm is not None else None


def _san(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    names = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return [clip(n, 256) for n in names[:MAX_SAN]]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: same name and its own key verifies its signature."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except ValueError:
        # cryptography refuses some legacy algorithms (SHA-1, MD5) here; those are
        # exactly the certificates an audit must flag, so check the signature directly.
        return _legacy_signature_verifies(cert)
    except Exception:  # noqa: BLE001 - any other verification failure means "not self-signed"
        return False
    return True


def _legacy_signature_verifies(cert: x509.Certificate) -> bool:
    try:
        key = cert.public_key()
        algorithm = cert.signature_hash_algorithm
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except Exception:  # noqa: BLE001 - unverifiable means "not shown to be self-signed"
        return False
    return True


def name_matches(cert: x509.Certificate, name: str) -> bool:
    """Whether `cert` is valid for `name` (RFC 6125: SAN first, CN only without SAN;
    a wildcard covers exactly one leftmost label)."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
        ips = list(ext.get_values_for_type(x509.IPAddress))
    except (x509.ExtensionNotFound, ValueError):
        dns = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        ips = []
    if ip is not None:
        return ip in ips
    wanted = name.lower().rstrip(".")
    for pattern in (d.lower().rstrip(".") for d in dns):
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == pattern[2:]:
            return True
    return False
