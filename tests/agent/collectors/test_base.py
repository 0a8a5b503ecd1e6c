"""Shared collector helpers: the bounded FQDN lookup, timestamps, paths under a root."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import CollectContext, clip, read_file, resolve_fqdn, rfc3339_utc


def _answer(canonname: str) -> Any:
    def fake(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, canonname, ("192.0.2.1", 0))]

    return fake


def test_fqdn_is_the_canonical_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _answer("web01.so-ttt.gov.vn"))
    assert resolve_fqdn("web01") == "web01.so-ttt.gov.vn"


def test_a_name_without_a_dot_is_not_an_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _answer("web01"))
    assert resolve_fqdn("web01") is None


def test_resolution_failure_gives_none() -> None:
    # conftest turns every non-numeric lookup into a resolution failure
    assert resolve_fqdn("web01.invalid") is None


def test_a_hanging_resolver_is_abandoned_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "late.example.gov.vn", ("192.0.2.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    try:
        assert resolve_fqdn("web01", timeout=0.2) is None
    finally:
        release.set()
    assert time.monotonic() - started < 2


def test_rfc3339_utc() -> None:
    assert rfc3339_utc(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_utc(1.25) == "1970-01-01T00:00:01.250000Z"
    local = datetime(2026, 11, 27, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    assert rfc3339_utc(local) == "2026-11-27T08:00:00Z"
    assert rfc3339_utc(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


def test_paths_are_resolved_under_the_root(tmp_path: Path) -> None:
    ctx = CollectContext(root=tmp_path)
    assert ctx.path("/etc/os-release") == tmp_path / "etc/os-release"
    assert CollectContext().path("/etc/os-release") == Path("/etc/os-release")


def test_read_file_is_bounded_and_lenient(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"ok\xff" + b"x" * 100)
    assert read_file(CollectContext(root=tmp_path), "/f", 10) == "ok\ufffd" + "x" * 7


def test_clip() -> None:
    assert clip("abcdef", 3) == "abc"
    assert clip("ab", 3) == "ab"
