"""canhgac's rule language: models, loader, operator registry, engine, scoring and tooling.

This package imports neither `agent` nor `server`: both of them import it, so the
agent's local `check` and the collector judge facts with the same code.
"""
