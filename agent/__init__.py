"""canhgac's agent: collects facts about one host, checks them locally, ships them.

Layers, from the bottom: `runner` (external commands), `collectors` (one module per
facts domain, listed in an explicit registry), `facts` (the `canhgac.facts/v1`
document), `shipping` (delivery to the collector) and `cli` (a thin click front end).
"""

from __future__ import annotations

from importlib import metadata


def _version() -> str:
    # The agent is also run from a source checkout (tests, `python -m`), where the
    # distribution may not be installed: fall back to the version in pyproject.toml.
    try:
        return metadata.version("canhgac")
    except metadata.PackageNotFoundError:
        return "0.1.0"


__version__ = _version()
