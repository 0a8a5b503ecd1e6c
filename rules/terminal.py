"""Making untrusted text safe to print on a terminal: the one helper of both CLIs.

The agent prints facts from the host (hostnames, process names, os-release fields)
and answers from the network; the collector prints token names that come from
enrolment requests and agency names typed by someone else. Printed raw, an ESC byte
could recolour, rewrite or hide lines of the administrator's terminal, a newline
could fake a table row, and bidirectional overrides could make text read differently
from what it is. Every such character is shown as a visible escape instead. It lives
in `rules`, the package both CLIs may import.
"""

from __future__ import annotations

import unicodedata

# Unicode categories never printed raw: controls (C0, C1, DEL), format characters
# (bidi overrides, zero-width characters), line and paragraph separators,
# surrogates and unassigned/private code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(value: object) -> str:
    """`value` as text with every unsafe character written as `\\xNN` or `\\uNNNN`."""
    text = str(value)
    if text.isprintable():  # the common case, checked in C
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            if code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)
