"""dpkg version ordering, checked against cases from deb-version(7) and dpkg's own tests."""

from __future__ import annotations

import subprocess

import pytest

from rules.language.versions import compare_versions
from tests.support import require_tool

ORDERED = [
    ("1.0~rc1", "1.0"),
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1.2.3", "1.10"),
    ("1:0.9", "2:0.1"),
    ("0.9", "1:0.1"),
    ("1.0a", "1.0b"),
    ("1.0", "1.0a"),
    ("1.0+dfsg", "1.0.1"),
    ("2.36-9+deb12u3", "2.36-9+deb12u4"),
    ("6.1.0-27-amd64", "6.1.0-28-amd64"),
    ("1.0~~", "1.0~"),
]


@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_ordering(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) < 0
    assert compare_versions(higher, lower) > 0


@pytest.mark.parametrize("version", ["1.0", "1:2.3-4", "0001.02", "1.0~rc1"])
def test_equal(version: str) -> None:
    assert compare_versions(version, version) == 0


def test_leading_zeros_are_numeric() -> None:
    assert compare_versions("1.002", "1.2") == 0


@pytest.mark.integration
@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_agrees_with_real_dpkg(lower: str, higher: str) -> None:
    # dpkg itself is the reference implementation.
    dpkg = require_tool("dpkg")
    done = subprocess.run([dpkg, "--compare-versions", lower, "lt", higher], check=False)
    assert done.returncode == 0
    assert compare_versions(lower, higher) < 0


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1a", "1²"),  # a non-ASCII digit sorts as a symbol (after letters), no crash
        ("1." + "9" * 5000, "1." + "1" + "0" * 5000),  # beyond int()'s digit limit
        ("99999999999999999999:1", "1:2"),  # an absurd epoch counts as 0
    ],
)
def test_untrusted_versions_never_crash(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) < 0
    assert compare_versions(higher, lower) > 0
