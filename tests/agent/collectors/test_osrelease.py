"""os-release(5) parsing and the family derived from ID and ID_LIKE."""

from __future__ import annotations

import pytest

from agent.collectors.osrelease import family_of, id_like, parse_os_release
from tests.agent.conftest import ROOTS


def test_quoting_rules_of_os_release() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            'NAME="Foo Linux"',
            "ID=foo",
            "VERSION_ID='1.2'",
            r'PRETTY_NAME="Foo \"Quoted\" \$HOME \\ \`x\`"',
            'ID_LIKE="bar baz"',
            'BROKEN="unterminated',
            "lower_case=ok",
            "not a key=1",
            "EMPTY=",
            "  SPACED=1  ",
        ]
    )
    values = parse_os_release(text)
    assert values["NAME"] == "Foo Linux"
    assert values["ID"] == "foo"
    assert values["VERSION_ID"] == "1.2"
    assert values["PRETTY_NAME"] == 'Foo "Quoted" $HOME \\ `x`'
    assert id_like(values) == ["bar", "baz"]
    assert values["EMPTY"] == ""
    assert values["SPACED"] == "1"
    assert values["lower_case"] == "ok"
    assert "BROKEN" not in values
    assert "not a key" not in values


def test_no_variable_expansion() -> None:
    assert parse_os_release("A=1\nB=$A")["B"] == "$A"


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (
            "debian12/etc/os-release",
            {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
        ),
        (
            "ubuntu2404/usr/lib/os-release",
            {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"},
        ),
        (
            "rocky9/etc/os-release",
            {"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9.4"},
        ),
    ],
)
def test_real_files(relative: str, expected: dict[str, str]) -> None:
    values = parse_os_release((ROOTS / relative).read_text())
    assert {k: values[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("os_id", "like", "family"),
    [
        ("debian", [], "debian"),
        ("ubuntu", ["debian"], "debian"),
        ("linuxmint", ["ubuntu", "debian"], "debian"),
        ("rocky", ["rhel", "centos", "fedora"], "rhel"),
        ("almalinux", ["rhel", "centos", "fedora"], "rhel"),
        ("rhel", ["fedora"], "rhel"),
        ("fedora", [], "rhel"),
        ("amzn", ["centos", "rhel", "fedora"], "rhel"),
        ("ol", ["fedora"], "rhel"),
        ("sles", ["suse"], "suse"),
        ("opensuse-leap", ["suse", "opensuse"], "suse"),
        ("arch", [], "arch"),
        ("manjaro", ["arch"], "arch"),
        ("alpine", [], "alpine"),
        ("nixos", [], "other"),
        ("linux", [], "other"),
        ("mydistro", ["DEBIAN"], "debian"),
    ],
)
def test_family(os_id: str, like: list[str], family: str) -> None:
    assert family_of(os_id, like) == family
