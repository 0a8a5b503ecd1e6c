"""The Prometheus text exposition format, written by hand for speed and safety.

prometheus_client builds a Python object per sample at every scrape; at tens of
thousands of hosts that is seconds of CPU. The exporter instead keeps each host's
lines rendered and joins them. Label values come from agents (hostnames, OS names),
so they are sanitised (control characters removed, length capped) and then escaped
as the format requires (backslash, double quote, newline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

LABEL_VALUE_MAX = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sanitise(value: str) -> str:
    """Control characters removed (a newline must not split a series), length capped."""
    return _CONTROL.sub("", value)[:LABEL_VALUE_MAX]


def escape(value: str) -> str:
    return sanitise(value).replace("\\", "\\\\").replace('"', '\\"')


def labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in pairs) + "}"


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # as prometheus_client writes it: 1.0, 0.25, 1e+20


def sample(name: str, label_text: str, value: float) -> str:
    return f"{name}{label_text} {number(value)}\n"


def header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
