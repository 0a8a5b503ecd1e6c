"""The collector's configuration: the `server:` section of a YAML file, plus flags.

Precedence is flags > file > defaults. Unknown keys are errors: a misspelt limit that
silently fell back to its default would be a security surprise.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rules.language.loader import builtin_packs_dir
from rules.language.model import Severity
from rules.language.yamlfile import YamlFileError, load_yaml_file
from rules.policy.scoring import DEFAULT_WEIGHTS
from server.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:8450"
DEFAULT_DATA_DIR = Path("/var/lib/canhgac")
MIB = 1024 * 1024
MAX_CONFIG_BYTES = MIB


class ConfigFileError(ConfigError):
    """The configuration file itself cannot be read as YAML (missing, not a regular
    file, not UTF-8, invalid YAML): a usage error, exit code 2."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the collector reads from its configuration; immutable once built."""

    listen: str = DEFAULT_LISTEN
    data_dir: Path = DEFAULT_DATA_DIR
    db_url: str | None = None  # None: SQLite file in data_dir (see `database_url`)
    rules: tuple[Path, ...] | None = None  # None: the built-in packs
    waivers: tuple[Path, ...] = ()
    scopes: tuple[Path, ...] = ()
    frameworks: tuple[Path, ...] = ()
    # Transport: HTTPS when both are given; client certificates required when
    # tls_client_ca is given (mutual TLS). Plain HTTP off loopback needs allow_plain_http.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    allow_plain_http: bool = False
    max_body_bytes: int = 10 * MIB  # compressed, as received
    max_decompressed_bytes: int = 50 * MIB
    max_json_depth: int = 64
    metrics_refresh_seconds: float = 15.0
    future_skew_seconds: float = 300.0
    max_list_items: int = 100_000  # any JSON array in a report
    # Per agent, per replica (token bucket): sustained rate and burst.
    agent_rate_per_minute: float = 60.0
    agent_rate_burst: int = 60
    # Agents report every report_interval_seconds; a host is stale after
    # stale_after_intervals intervals without a report.
    report_interval_seconds: float = 900.0
    stale_after_intervals: float = 3.0
    # Facts history (superseded domain contents, old reports) kept this many days; the
    # latest facts of every host and every finding are kept regardless.
    retention_days: int = 90
    # ... applied this often, by one replica (worker) at a time (server.evaluation.lease).
    retention_every_seconds: float = 3600.0
    # Replicas poll their policy files this often and re-evaluate on change.
    policy_check_seconds: float = 60.0
    weights: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # /metrics shows every host's security posture: optionally a bearer token or
    # basic auth (off by default). Only SHA-256 hex digests are configured.
    metrics_bearer_sha256: str | None = None
    metrics_basic_user: str | None = None
    metrics_basic_password_sha256: str | None = None
    # Opt-in per-host detail: canhgac_rule_failing series at most this many (0: off).
    metrics_rule_failing_max_series: int = 0
    # ... and canhgac_cert_not_after_timestamp_seconds series at most this many (0: off).
    metrics_cert_max_series: int = 0
    # The vulnerability feed store (`vulndb import`); None: vulndb.sqlite in data_dir.
    vulndb_path: Path | None = None
    # Feeds older than this make every host's vulnerability status an error (stale).
    vulndb_max_age_days: float = 7.0

    @property
    def stale_after_seconds(self) -> float:
        return self.report_interval_seconds * self.stale_after_intervals

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'canhgac.db'}"

    @property
    def vulndb_file(self) -> Path:
        return self.vulndb_path or self.data_dir / "vulndb.sqlite"

    def rule_paths(self) -> tuple[Path, ...]:
        if self.rules is not None:
            return self.rules
        return (builtin_packs_dir(),)

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        """A copy with every non-None override applied (how flags win over the file)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return _validated(replace(self, **given)) if given else self


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"listen address {listen!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"listen port {port} is out of range 1-65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: Path | None) -> ServerConfig:
    """Read the `server:` section of `path` (defaults when `path` is None)."""
    if path is None:
        return ServerConfig()
    try:
        document = load_yaml_file(path, MAX_CONFIG_BYTES)
    except YamlFileError as e:
        raise ConfigFileError(str(e)) from e
    if document is None:
        return ServerConfig()
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping")
    section = document.get("server")
    if section is None:
        return ServerConfig()
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: `server` must be a mapping")
    try:
        return from_mapping(section, base_dir=path.parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def from_mapping(section: Mapping[str, Any], base_dir: Path = Path()) -> ServerConfig:
    """Build a config from the `server:` mapping; relative paths are relative to `base_dir`."""
    known = {f.name for f in fields(ServerConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"server: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in section.items():
        if value is None:
            continue
        values[key] = _convert(key, value, base_dir)
    return _validated(ServerConfig(**values))


def _convert(key: str, value: Any, base_dir: Path) -> Any:
    if key in {"listen", "db_url", "metrics_basic_user"}:
        return _expect(key, value, str)
    if key in {"metrics_bearer_sha256", "metrics_basic_password_sha256"}:
        digest = _expect(key, value, str)
        if not _SHA256_HEX.fullmatch(digest):
            raise ConfigError(f"server.{key} must be 64 lower-case hex digits (a SHA-256)")
        return digest
    if key == "data_dir":
        return base_dir / _expect(key, value, str)
    if key in {"rules", "waivers", "scopes", "frameworks"}:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(p, str) for p in items):
            raise ConfigError(f"server.{key} must be a list of paths")
        return tuple(base_dir / p for p in items)
    if key in {"tls_cert", "tls_key", "tls_client_ca", "vulndb_path"}:
        return base_dir / _expect(key, value, str)
    if key == "allow_plain_http":
        if not isinstance(value, bool):
            raise ConfigError("server.allow_plain_http must be true or false")
        return value
    if key == "weights":
        return _weights(value)
    if key in _FLOAT_KEYS:
        number = _expect(key, value, (int, float))
        return float(number)
    return _expect(key, value, int)


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FLOAT_KEYS = {
    "metrics_refresh_seconds",
    "future_skew_seconds",
    "agent_rate_per_minute",
    "report_interval_seconds",
    "stale_after_intervals",
    "policy_check_seconds",
    "retention_every_seconds",
    "vulndb_max_age_days",
}


def _expect(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int subclass; `max_json_depth: yes` must not mean 1.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"server.{key} has the wrong type ({type(value).__name__})")
    return value


def _weights(value: Any) -> dict[Severity, float]:
    if not isinstance(value, Mapping):
        raise ConfigError("server.weights must map severities to numbers")
    weights = dict(DEFAULT_WEIGHTS)
    for name, weight in value.items():
        try:
            severity = Severity(name)
        except ValueError as e:
            raise ConfigError(f"server.weights: unknown severity {name!r}") from e
        weights[severity] = float(_expect(f"weights.{name}", weight, (int, float)))
    return weights


def _check_series_caps(config: ServerConfig) -> None:
    for name in ("metrics_rule_failing_max_series", "metrics_cert_max_series"):
        if getattr(config, name) < 0:
            raise ConfigError(f"server.{name} must be 0 (off) or positive")


def _validated(config: ServerConfig) -> ServerConfig:
    parse_listen(config.listen)
    for name in (
        "max_body_bytes",
        "max_decompressed_bytes",
        "max_json_depth",
        "max_list_items",
        "agent_rate_burst",
        "retention_days",
    ):
        if getattr(config, name) <= 0:
            raise ConfigError(f"server.{name} must be positive")
    if config.max_decompressed_bytes < config.max_body_bytes:
        raise ConfigError("server.max_decompressed_bytes must be at least max_body_bytes")
    for name in (
        "metrics_refresh_seconds",
        "agent_rate_per_minute",
        "report_interval_seconds",
        "stale_after_intervals",
        "policy_check_seconds",
        "retention_every_seconds",
        "vulndb_max_age_days",
    ):
        number = getattr(config, name)
        if not math.isfinite(number) or number <= 0:
            raise ConfigError(f"server.{name} must be a positive number")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("server.tls_cert and server.tls_key go together")
    if config.tls_client_ca is not None and config.tls_cert is None:
        raise ConfigError("server.tls_client_ca (mutual TLS) needs tls_cert and tls_key")
    if (config.metrics_basic_user is None) != (config.metrics_basic_password_sha256 is None):
        raise ConfigError(
            "server.metrics_basic_user and server.metrics_basic_password_sha256 go together"
        )
    _check_series_caps(config)
    skew = config.future_skew_seconds
    if not math.isfinite(skew) or skew < 0:
        raise ConfigError("server.future_skew_seconds must be a non-negative number")
    for severity, weight in config.weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"server.weights.{severity.value} must be a non-negative number")
    return config
