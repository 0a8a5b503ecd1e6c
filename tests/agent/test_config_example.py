"""config.example.yaml stays loadable: a user copies it, so it must never rot."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_agent_section_of_the_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.server is not None and config.server.startswith("https://")
    assert config.budget_seconds == 60
    assert config.probe_listeners is True
    assert config.tls_endpoints == ()
