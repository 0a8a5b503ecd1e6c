"""Fixtures for the agent tests.

Tests never resolve names through DNS: `getaddrinfo` is limited to numeric addresses
and "localhost" for every test here, so the host collector's FQDN lookup (and anything
else) fails fast instead of querying a name server.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from rules.facts import load_schema

DATA = Path(__file__).resolve().parents[1] / "data" / "agent"
ROOTS = DATA / "roots"

_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name != "localhost":
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"DNS disabled in tests: {name}") from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)
    yield


@pytest.fixture(scope="session")
def validate() -> Callable[[Any], Any]:
    """A validator for canhgac.facts/v1 documents, compiled from the schema file."""
    return fastjsonschema.compile(load_schema())
