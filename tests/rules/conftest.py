"""Shared fixtures for the rules tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"


def listener(
    port: int, address: str = "0.0.0.0", protocol: str = "tcp", **extra: Any
) -> dict[str, Any]:
    exposure = (
        "loopback"
        if address.startswith("127.") or address == "::1"
        else ("all" if address in ("0.0.0.0", "::") else "specific")
    )
    family = "ipv6" if ":" in address else "ipv4"
    return {
        "protocol": protocol,
        "family": family,
        "address": address,
        "port": port,
        "exposure": exposure,
        "pid": extra.get("pid", 100 + port),
        "process": extra.get("process", f"proc{port}"),
        "user": extra.get("user", "root"),
    }


def facts_document(**domains: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7e5a3e-1c1d-4f5e-9a6b-1234567890ab",
        "agent_id": "test-agent",
        "seq": 1,
        "collected_at": "2026-11-27T08:00:00Z",
        "agent_version": "0.1.0",
        "errors": [],
    }
    document.update(domains)
    return document


@pytest.fixture
def debian_host() -> dict[str, Any]:
    return {
        "hostname": "web01",
        "os": {"id": "debian", "name": "Debian GNU/Linux", "family": "debian", "version_id": "12"},
        "kernel": {"release": "6.1.0-28-amd64"},
        "architecture": "x86_64",
    }
