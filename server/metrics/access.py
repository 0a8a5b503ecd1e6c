"""Who may scrape /metrics: anyone by default; a bearer token or basic auth when configured.

Per-host failing counts are security posture, so a province can require Prometheus
to authenticate. The configuration holds only SHA-256 digests; a presented secret is
hashed and compared in constant time, so neither the config file nor the timing of a
refusal reveals it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class MetricsAccess:
    bearer_sha256: str | None = None
    basic_user: str | None = None
    basic_password_sha256: str | None = None

    @property
    def open(self) -> bool:
        return self.bearer_sha256 is None and self.basic_password_sha256 is None

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value grants access."""
        if self.open:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.bearer_sha256 is not None:
            return hmac.compare_digest(_sha256(credentials.strip()), self.bearer_sha256)
        if scheme == "basic" and self.basic_password_sha256 is not None:
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            if not sep or self.basic_user is None:
                return False
            # Both compared every time: no early exit telling which part was wrong.
            user_ok = hmac.compare_digest(_sha256(user), _sha256(self.basic_user))
            password_ok = hmac.compare_digest(_sha256(password), self.basic_password_sha256)
            return user_ok and password_ok
        return False

    @property
    def challenge(self) -> str:
        return "Basic" if self.basic_password_sha256 is not None else "Bearer"
