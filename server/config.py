"""The collector's configuration: the `server:` section of a YAML file, plus flags.

Precedence is flags > file > defaults. Unknown keys are errors: a misspelt limit that
silently fell back to its default would be a security surprise.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from rules.model import Severity
from rules.scoring import DEFAULT_WEIGHTS
from server.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:8450"
DEFAULT_DATA_DIR = Path("/var/lib/canhgac")
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything the collector reads from its configuration; immutable once built."""

    listen: str = DEFAULT_LISTEN
    data_dir: Path = DEFAULT_DATA_DIR
    db_url: str | None = None  # None: SQLite file in data_dir (see `database_url`)
    rules: tuple[Path, ...] | None = None  # None: the built-in packs
    max_body_bytes: int = 10 * MIB  # compressed, as received
    max_decompressed_bytes: int = 50 * MIB
    max_json_depth: int = 64
    metrics_refresh_seconds: float = 15.0
    future_skew_seconds: float = 300.0
    weights: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'canhgac.db'}"

    def rule_paths(self) -> tuple[Path, ...]:
        if self.rules is not None:
            return self.rules
        # Imported here: the loader is only needed by commands that evaluate rules.
        from rules.loader import builtin_packs_dir

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
        document = yaml.safe_load(path.read_text("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
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
    if key in {"listen", "db_url"}:
        return _expect(key, value, str)
    if key == "data_dir":
        return base_dir / _expect(key, value, str)
    if key == "rules":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(p, str) for p in items):
            raise ConfigError("server.rules must be a list of paths")
        return tuple(base_dir / p for p in items)
    if key == "weights":
        return _weights(value)
    if key in {"metrics_refresh_seconds", "future_skew_seconds"}:
        number = _expect(key, value, (int, float))
        return float(number)
    return _expect(key, value, int)


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


def _validated(config: ServerConfig) -> ServerConfig:
    parse_listen(config.listen)
    for name in ("max_body_bytes", "max_decompressed_bytes", "max_json_depth"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"server.{name} must be positive")
    if config.max_decompressed_bytes < config.max_body_bytes:
        raise ConfigError("server.max_decompressed_bytes must be at least max_body_bytes")
    refresh = config.metrics_refresh_seconds
    if not math.isfinite(refresh) or refresh <= 0:
        raise ConfigError("server.metrics_refresh_seconds must be a positive number")
    skew = config.future_skew_seconds
    if not math.isfinite(skew) or skew < 0:
        raise ConfigError("server.future_skew_seconds must be a non-negative number")
    for severity, weight in config.weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"server.weights.{severity.value} must be a non-negative number")
    return config
