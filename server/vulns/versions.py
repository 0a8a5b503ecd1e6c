"""Version ordering per package manager: dpkg (the rules' own) and rpm's rpmvercmp.

Feeds state fixed versions in their distribution's ordering, so a host's version is
compared with the manager that installed it. RPM: `[epoch:]version-release`, a
missing epoch is 0 (rpm 4.x; `2:4.24.6-1` is epoch 2, never version 2), then
rpmvercmp on version and on release. Tested against `rpm --eval` with rpm.vercmp
and rpm.ver.
"""

from __future__ import annotations

from rules.language.versions import compare_versions as compare_dpkg

_DIGITS = frozenset("0123456789")


def _is_alnum(char: str) -> bool:
    # rpm's risalnum is ASCII-only; str.isalnum() would accept letters of any script.
    return char.isascii() and char.isalnum()


def _is_alpha(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _skip_separators(text: str, index: int) -> int:
    while index < len(text) and not _is_alnum(text[index]) and text[index] not in "~^":
        index += 1
    return index


def _special(ca: str, cb: str) -> int | None:
    """`~` sorts before everything, even the end; `^` after the end, before anything
    else. 0: both have it (skip it); None: neither is special."""
    if ca == "~" or cb == "~":
        return 0 if ca == cb else (-1 if ca == "~" else 1)
    if ca == "^" or cb == "^":
        if not ca or not cb:
            return -1 if not ca else 1
        return 0 if ca == cb else (1 if cb == "^" else -1)
    return None


def _segment(text: str, index: int, numeric: bool) -> int:
    kind = (lambda c: c in _DIGITS) if numeric else _is_alpha
    while index < len(text) and kind(text[index]):
        index += 1
    return index


def _compare_segments(one: str, two: str, numeric: bool) -> int:
    if not two:  # segments of different kinds: a number is newer than letters
        return 1 if numeric else -1
    if numeric:
        one, two = one.lstrip("0"), two.lstrip("0")
        if len(one) != len(two):
            return 1 if len(one) > len(two) else -1
    return (one > two) - (one < two)


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1, as rpm's rpmvercmp (rpmio/rpmvercmp.c, with `~` and `^`)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        i, j = _skip_separators(a, i), _skip_separators(b, j)
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        special = _special(ca, cb)
        if special is not None:
            if special:
                return special
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        numeric = ca in _DIGITS
        end_i, end_j = _segment(a, i, numeric), _segment(b, j, numeric)
        order = _compare_segments(a[i:end_i], b[j:end_j], numeric)
        if order:
            return order
        i, j = end_i, end_j
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _split_evr(evr: str) -> tuple[int, str, str]:
    epoch_text, sep, rest = evr.strip().partition(":")
    if not sep:
        epoch_text, rest = "0", evr.strip()
    epoch = int(epoch_text) if epoch_text.isdigit() and len(epoch_text) < 10 else 0
    version, dash, release = rest.rpartition("-")
    if not dash:
        return epoch, rest, ""
    return epoch, version, release


def compare_rpm(a: str, b: str) -> int:
    """EVR ordering: epoch (missing = 0), then version, then release (rpmvercmp)."""
    epoch_a, version_a, release_a = _split_evr(a)
    epoch_b, version_b, release_b = _split_evr(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return rpmvercmp(version_a, version_b) or rpmvercmp(release_a, release_b)


def compare(manager: str, a: str, b: str) -> int:
    """Order two versions of packages installed by `manager` ("dpkg" or "rpm")."""
    if manager == "rpm":
        return compare_rpm(a, b)
    order = compare_dpkg(a, b)
    return (order > 0) - (order < 0)
