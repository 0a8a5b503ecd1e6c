"""canhgac's agent: collects facts about one host, checks them locally, ships them.

Layers, from the bottom: `runner` (external commands), `collectors` (one module per
facts domain, listed in an explicit registry), `facts` (the `canhgac.facts/v1`
document), `shipping` (delivery to the collector) and `cli` (a thin click front end).
"""

from __future__ import annotations

# A constant, not `importlib.metadata.version("canhgac")`: that import cost ~25 ms of
# every start (a quarter of a `--version`), and the .deb and .rpm install the code
# without distribution metadata, where the lookup could only fall back to a literal.
# tests/agent/test_version.py keeps it equal to pyproject.toml's version.
__version__ = "0.1.0"
