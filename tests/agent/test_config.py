"""The `agent:` section of the YAML configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "canhgac.yaml"
    path.write_text(text)
    return path


def test_full_section_with_relative_paths(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
server: {listen: 0.0.0.0:8443}   # the collector's section is ignored here
agent:
  server: https://canhgac.so-ttt.gov.vn
  token_file: secrets/agent.token
  ca_file: /etc/canhgac/ca.pem
  state_dir: state
  agent_id: so-ttt-web01
  rules: [packs, /opt/extra.yaml]
  budget_seconds: 20
""",
    )
    assert load_config(path) == AgentConfig(
        server="https://canhgac.so-ttt.gov.vn",
        token_file=tmp_path / "secrets/agent.token",
        ca_file=Path("/etc/canhgac/ca.pem"),
        state_dir=tmp_path / "state",
        agent_id="so-ttt-web01",
        rules=(tmp_path / "packs", Path("/opt/extra.yaml")),
        budget_seconds=20.0,
    )


def test_single_rules_path(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "agent: {rules: my.yaml}")).rules == (tmp_path / "my.yaml",)


@pytest.mark.parametrize("text", ["", "server: {}", "agent:", "# only a comment"])
def test_no_agent_section_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(_write(tmp_path, text)) == AgentConfig()


def test_no_file_gives_defaults() -> None:
    assert load_config(None) == AgentConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agent: {servr: https://x}", "unknown key.*servr"),
        ("agent: [1, 2]", "'agent' must be a mapping"),
        ("- a\n- b", "top level must be a mapping"),
        ("agent: {server: 42}", "agent.server must be a non-empty string"),
        ("agent: {token_file: ''}", "agent.token_file"),
        ("agent: {rules: [1]}", "agent.rules"),
        ("agent: {budget_seconds: 0}", "budget_seconds"),
        ("agent: {budget_seconds: true}", "budget_seconds"),
        ("agent: {budget_seconds: soon}", "budget_seconds"),
        ("agent: {server: [unclosed", "invalid YAML"),
    ],
)
def test_invalid_configurations(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_collection_settings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "agent:\n"
        "  certificate_paths: [/etc/nginx/**/*.crt, /opt/portal/tls/chain.pem]\n"
        "  tls_endpoints: ['portal.so-ttt.gov.vn:443']\n"
        "  probe_listeners: false\n",
    )
    settings = load_config(path).collect_settings()
    assert settings.certificate_paths == ("/etc/nginx/**/*.crt", "/opt/portal/tls/chain.pem")
    assert settings.tls_endpoints == ("portal.so-ttt.gov.vn:443",)
    assert settings.probe_listeners is False
    defaults = load_config(None).collect_settings()
    assert (defaults.certificate_paths, defaults.tls_endpoints) == (None, ())


@pytest.mark.parametrize(
    "text",
    [
        "agent:\n  certificate_paths: /etc/ssl\n",
        "agent:\n  tls_endpoints: [443]\n",
        "agent:\n  probe_listeners: 'yes'\n",
    ],
)
def test_bad_collection_settings(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, text))
