"""config.example.yaml stays loadable: a user copies it, so it must never rot."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from server.config import load_config as load_server_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def test_agent_section_of_the_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.server is not None and config.server.startswith("https://")
    assert config.budget_seconds == 60
    assert config.probe_listeners is True
    assert config.tls_endpoints == ()


def test_server_section_of_the_example_loads() -> None:
    config = load_server_config(EXAMPLE)
    assert config.listen == "127.0.0.1:8450"
    assert config.retention_days == 90
    assert config.allow_plain_http is False
