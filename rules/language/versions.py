"""Package version comparison for the `version_*` operators.

Implements dpkg's algorithm (deb-version(7)): `[epoch:]upstream[-revision]`, where
`~` sorts before everything, even the end of the string (`1.0~rc1 < 1.0`), letters
sort before other symbols, and digit runs compare numerically. RPM's rpmvercmp
agrees with it on the usual `1.2.3-4.el9` shapes; the package-manager-specific
differences (RPM's `^`, segment rules) are documented in docs/rules.md.
"""

from __future__ import annotations

_DIGITS = frozenset("0123456789")


def _is_digit(char: str) -> bool:
    # ASCII only, as dpkg does: str.isdigit() also accepts "²", which int() rejects,
    # and version strings come from hosts, so they are untrusted input.
    return char in _DIGITS


def _order(char: str) -> int:
    if char == "~":
        return -1
    if _is_digit(char):
        return 0
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_digits(a: str, b: str) -> int:
    """Numeric order of two digit runs without int(): runs may be thousands of digits long."""
    a = a.lstrip("0")
    b = b.lstrip("0")
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _is_digit(a[i])) or (j < len(b) and not _is_digit(b[j])):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        start_i, start_j = i, j
        while i < len(a) and _is_digit(a[i]):
            i += 1
        while j < len(b) and _is_digit(b[j]):
            j += 1
        order = _compare_digits(a[start_i:i], b[start_j:j])
        if order:
            return order
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch = 0
    rest = version.strip()
    if ":" in rest:
        head, rest = rest.split(":", 1)
        epoch_digits = head.lstrip("0")
        # an epoch is a small number; anything else (or absurdly long) counts as 0
        epoch = (
            int(epoch_digits)
            if epoch_digits and len(epoch_digits) < 10 and all(map(_is_digit, epoch_digits))
            else 0
        )
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return epoch, upstream, revision


def compare_versions(a: str, b: str) -> int:
    """Negative if a < b, zero if equal, positive if a > b (dpkg ordering)."""
    epoch_a, up_a, rev_a = _split(a)
    epoch_b, up_b, rev_b = _split(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(up_a, up_b) or _compare_part(rev_a, rev_b)
