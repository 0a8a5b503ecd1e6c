"""Fact collectors: one module per facts domain, listed in `registry.COLLECTORS`.

A collector is a function `CollectContext -> Collected`. It reads the host only
through the context (files under `ctx.root`, commands through `ctx.run`, the
psutil facade `ctx.system`), so tests give it a fake root tree and recorded outputs.
"""
