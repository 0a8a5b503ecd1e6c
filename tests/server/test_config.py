"""Configuration: defaults, the `server:` section of a YAML file, and flag overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.language.loader import builtin_packs_dir
from rules.language.model import Severity
from rules.policy.scoring import DEFAULT_WEIGHTS
from server.config import (
    DEFAULT_DATA_DIR,
    ServerConfig,
    from_mapping,
    is_loopback,
    load_config,
    parse_listen,
)
from server.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, "utf-8")
    return path


def test_defaults() -> None:
    config = ServerConfig()
    assert config.listen == "127.0.0.1:8450"
    assert config.data_dir == DEFAULT_DATA_DIR == Path("/var/lib/canhgac")
    assert config.database_url == "sqlite:////var/lib/canhgac/canhgac.db"
    assert config.rule_paths() == (builtin_packs_dir(),)
    assert (config.max_body_bytes, config.max_decompressed_bytes) == (10 * 2**20, 50 * 2**20)
    assert (config.max_json_depth, config.metrics_refresh_seconds) == (64, 15.0)
    assert config.future_skew_seconds == 300.0
    assert dict(config.weights) == dict(DEFAULT_WEIGHTS)


def test_reads_the_server_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
agent: {server_url: https://example.invalid}   # other sections are not ours
server:
  listen: "[::1]:9000"
  data_dir: data
  rules: [packs, extra.yaml]
  max_body_bytes: 1000
  max_decompressed_bytes: 5000
  max_json_depth: 10
  metrics_refresh_seconds: 2.5
  future_skew_seconds: 60
  weights: {critical: 20, info: 0.5}
""",
    )
    config = load_config(path)
    assert config.listen == "[::1]:9000"
    assert config.data_dir == tmp_path / "data"  # relative to the config file
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'canhgac.db'}"
    assert config.rule_paths() == (tmp_path / "packs", tmp_path / "extra.yaml")
    assert (config.max_body_bytes, config.max_decompressed_bytes, config.max_json_depth) == (
        1000,
        5000,
        10,
    )
    assert (config.metrics_refresh_seconds, config.future_skew_seconds) == (2.5, 60.0)
    assert config.weights[Severity.CRITICAL] == 20.0
    assert config.weights[Severity.INFO] == 0.5
    assert config.weights[Severity.HIGH] == DEFAULT_WEIGHTS[Severity.HIGH]


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {db_url: 'sqlite:////from/file.db', listen: '127.0.0.1:1'}")
    config = load_config(path).with_overrides(db_url="sqlite:////from/flag.db", listen=None)
    assert config.database_url == "sqlite:////from/flag.db"
    assert config.listen == "127.0.0.1:1"


@pytest.mark.parametrize("text", ["", "other: 1\n", "server:\n"])
def test_empty_or_absent_section_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text)) == ServerConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: {max_body_byte: 10}", "unknown key(s) max_body_byte"),
        ("server: {max_body_bytes: '10MiB'}", "max_body_bytes has the wrong type"),
        ("server: {max_json_depth: true}", "max_json_depth has the wrong type"),
        ("server: {max_json_depth: 0}", "max_json_depth must be positive"),
        ("server: {max_body_bytes: 100, max_decompressed_bytes: 10}", "at least max_body_bytes"),
        ("server: {metrics_refresh_seconds: 0}", "metrics_refresh_seconds"),
        ("server: {weights: {urgent: 1}}", "unknown severity 'urgent'"),
        ("server: {weights: {high: -1}}", "weights.high"),
        ("server: {listen: 'no-port'}", "not HOST:PORT"),
        ("server: {listen: '127.0.0.1:70000'}", "out of range"),
        ("server: {rules: [1, 2]}", "list of paths"),
        ("server: {waivers: [1]}", "server.waivers must be a list of paths"),
        ("server: {tls_cert: a.pem}", "tls_cert and server.tls_key go together"),
        ("server: {tls_client_ca: ca.pem}", "needs tls_cert"),
        ("server: {allow_plain_http: 'yes'}", "allow_plain_http must be true or false"),
        ("server: {agent_rate_per_minute: 0}", "agent_rate_per_minute"),
        ("server: {agent_rate_burst: 0}", "agent_rate_burst must be positive"),
        ("server: {retention_days: 0}", "retention_days must be positive"),
        ("server: {stale_after_intervals: -1}", "stale_after_intervals"),
        ("server: {max_list_items: 0}", "max_list_items must be positive"),
        ("server: [1]", "`server` must be a mapping"),
        ("- 1\n", "top level must be a mapping"),
        ("server: {listen: [\n", "invalid YAML"),
    ],
)
def test_invalid_configuration_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_overrides_are_validated() -> None:
    with pytest.raises(ConfigError):
        ServerConfig().with_overrides(listen="nowhere")


def test_from_mapping_without_file() -> None:
    assert from_mapping({"max_json_depth": 5}).max_json_depth == 5


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8450", ("127.0.0.1", 8450)),
        ("[::1]:8450", ("::1", 8450)),
        ("localhost:1", ("localhost", 1)),
        ("0.0.0.0:443", ("0.0.0.0", 443)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("collector.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_collector_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "server:\n  tls_cert: s.pem\n  tls_key: s.key\n  tls_client_ca: ca.pem\n"
        "  waivers: [w.yaml]\n  scopes: s.yaml\n  frameworks: [f]\n"
        "  report_interval_seconds: 60\n  stale_after_intervals: 2\n  retention_days: 7\n"
        "  allow_plain_http: true\n",
        "utf-8",
    )
    loaded = load_config(config)
    assert (loaded.tls_cert, loaded.tls_client_ca) == (tmp_path / "s.pem", tmp_path / "ca.pem")
    assert loaded.tls and loaded.allow_plain_http
    assert (loaded.waivers, loaded.scopes) == ((tmp_path / "w.yaml",), (tmp_path / "s.yaml",))
    assert loaded.stale_after_seconds == 120
    assert loaded.retention_days == 7
