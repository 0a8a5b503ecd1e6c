"""Version ordering checked against the package managers themselves on this machine:
every pair of a vector list through `dpkg --compare-versions` and through rpm's own
rpm.vercmp / rpm.ver (rpm is installed by .ci/run)."""

from __future__ import annotations

import itertools
import json
import subprocess

from server.vulns.versions import compare, compare_rpm, rpmvercmp
from tests.support import require_tool

DPKG_VECTORS = [
    "0",
    "1",
    "1.0",
    "1.0-1",
    "1.0-1+b1",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0+dfsg-1",
    "1.0a",
    "1.0.1",
    "1:0.9",
    "2:4.24.6-1",
    "4.24.7-1",
    "1:9.2p1-2+deb12u10",
    "1:9.2p1-2+deb12u9",
    "2.36-9+deb12u14",
    "2.36-9+deb12u9",
    "3.0.22-1~deb12u2",
    "3.0.22-1",
    "3.0.22-1~deb12u10",
    "2.9.14+dfsg-1.3~deb12u5",
    "2.9.14+dfsg-1.3~deb12u4",
    "6.1.187-1",
    "6.1.76+1",
    "7.88.1-10+deb12u14",
    "1.0~~",
    "1.0~~a",
    "1.0~",
    "00001.0",
    "1.0-0",
    "1.2.3-a",
    "1.2.3-A",
]

RPM_VECTORS = [
    "1.0",
    "1.0a",
    "1.0.1",
    "1.0~rc1",
    "1.0^1",
    "1.0^",
    "1.0~",
    "2.0",
    "10",
    "9",
    "1.el9",
    "1.el9_4",
    "1.el9_4.2",
    "27.el9",
    "27.el9_4.1",
    "2a",
    "2.a",
    "a",
    "b",
    "1..0",
    "1.0.a",
    "001",
    "1_0",
    "5.14.0",
    "5.14.0-503.40.1.el9_5",
]

RPM_EVRS = [
    "1:3.0.7-27.el9",
    "3.0.7-27.el9",
    "0:3.0.7-27.el9",
    "1:3.0.7-27.el9_4.1",
    "2:4.24.6-1",
    "4.24.7-1",
    "1:1.20.1-14.el9_2.1",
    "1.20.1-14.el9_2.1",
    "5.14.0-503.40.1.el9_5",
    "5.14.0-427.13.1.el9_4",
    "2.34-100.el9_4.2",
    "2.34-100.el9",
]


def _dpkg(a: str, b: str) -> int:
    for op, result in (("lt", -1), ("eq", 0)):
        done = subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False)
        if done.returncode == 0:
            return result
    return 1


def test_dpkg_order_agrees_with_dpkg_on_every_pair() -> None:
    require_tool("dpkg")
    disagreements = [
        (a, b, compare("dpkg", a, b), _dpkg(a, b))
        for a, b in itertools.combinations(DPKG_VECTORS, 2)
        if compare("dpkg", a, b) != _dpkg(a, b)
    ]
    assert disagreements == []


def _rpm_lua(expression: str, pairs: list[tuple[str, str]]) -> list[int]:
    """One rpm process for every pair: the Lua prints one result per line."""
    # rpm's Lua print adds no newline inside a macro: a space separates the results.
    lines = [
        f'print(tostring({expression.format(a=json.dumps(a), b=json.dumps(b))}) .. " ")'
        for a, b in pairs
    ]
    script = "%{lua: " + " ".join(lines) + "}"
    output = subprocess.run(
        ["rpm", "--eval", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [int(line) for line in output.split()]


def test_rpmvercmp_agrees_with_rpm_on_every_pair() -> None:
    require_tool("rpm")
    pairs = list(itertools.permutations(RPM_VECTORS, 2))
    expected = _rpm_lua("rpm.vercmp({a}, {b})", pairs)
    assert len(expected) == len(pairs)
    got = [rpmvercmp(a, b) for a, b in pairs]
    assert [(p, g, e) for p, g, e in zip(pairs, got, expected, strict=True) if g != e] == []


def test_rpm_evr_order_agrees_with_rpm_ver_missing_epoch_is_zero() -> None:
    require_tool("rpm")
    pairs = list(itertools.permutations(RPM_EVRS, 2))
    expression = (
        "(function(x, y) if x < y then return -1 elseif x == y then return 0 "
        "else return 1 end end)(rpm.ver({a}), rpm.ver({b}))"
    )
    expected = _rpm_lua(expression, pairs)
    got = [compare_rpm(a, b) for a, b in pairs]
    assert [(p, g, e) for p, g, e in zip(pairs, got, expected, strict=True) if g != e] == []
    # the trap the feeds' users hit: an epoch is not a major version
    assert compare_rpm("2:4.24.6-1", "4.24.7-1") == 1
    assert compare_rpm("3.0.7-27.el9", "0:3.0.7-27.el9") == 0
