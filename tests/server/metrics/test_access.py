"""/metrics credentials: SHA-256 digests configured, secrets compared in constant time."""

from __future__ import annotations

import base64
import hashlib

import pytest

from server.config import from_mapping
from server.errors import ConfigError
from server.metrics.access import MetricsAccess


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_open_by_default() -> None:
    assert MetricsAccess().allows(None)
    assert MetricsAccess().allows("Bearer anything")


def test_bearer() -> None:
    access = MetricsAccess(bearer_sha256=digest("s3cret"))
    assert access.allows("Bearer s3cret")
    assert access.allows("bearer s3cret")  # the scheme is case-insensitive (RFC 7235)
    assert not access.allows("Bearer s3cre")
    assert not access.allows(None)
    assert not access.allows(basic("x", "s3cret"))
    assert access.challenge == "Bearer"


def test_basic() -> None:
    access = MetricsAccess(basic_user="prometheus", basic_password_sha256=digest("pw:with:colons"))
    assert access.allows(basic("prometheus", "pw:with:colons"))
    assert not access.allows(basic("grafana", "pw:with:colons"))
    assert not access.allows(basic("prometheus", "pw"))
    assert not access.allows("Basic !!!not-base64")
    assert not access.allows("Basic " + base64.b64encode(b"no-colon").decode())
    assert not access.allows("Bearer pw:with:colons")
    assert access.challenge == "Basic"


def test_configuration_takes_digests_only() -> None:
    config = from_mapping({"metrics_bearer_sha256": digest("t")})
    assert config.metrics_bearer_sha256 == digest("t")
    with pytest.raises(ConfigError, match="64 lower-case hex"):
        from_mapping({"metrics_bearer_sha256": "the-secret-itself"})
    with pytest.raises(ConfigError, match="go together"):
        from_mapping({"metrics_basic_user": "prometheus"})
