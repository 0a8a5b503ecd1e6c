"""Benchmark: the built-in policy evaluated against realistic facts documents.

The document is this machine's real `canhgac-agent collect --no-state` output, then
the same document scaled to a busy server (1,500 packages, 60 listeners, 20
certificates, 30 pending updates) by repeating real items with new names. Prints the
median time per document and the ratio to a baseline measured in the same run: a
JSON round trip of the same document (what any consumer pays to touch it), so the
figure means something on a shared, noisy machine.

`--profile` then prints cProfile's top functions (by own time) for the busy server's
document, evaluated REPEAT times: where the engine's time goes.
"""

from __future__ import annotations

import copy
import cProfile
import json
import pstats
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from figures import median_seconds, record

from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status

BIN = Path(sys.executable).parent
REPEAT = 100


def real_document() -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "canhgac-agent"), "collect", "--no-state"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    document: dict[str, Any] = json.loads(out)
    return document


def _grow(
    items: list[dict[str, Any]], count: int, rename: Callable[[dict[str, Any], int], None]
) -> list[dict[str, Any]]:
    if not items:
        return items
    grown = []
    for index in range(count):
        item = copy.deepcopy(items[index % len(items)])
        rename(item, index)
        grown.append(item)
    return grown


def busy_server(document: dict[str, Any]) -> dict[str, Any]:
    busy = copy.deepcopy(document)
    packages = busy.get("packages") or {}
    if packages.get("items"):
        packages["items"] = _grow(
            packages["items"], 1500, lambda p, i: p.update(name=f"{p['name']}-{i}")
        )
        packages["count"] = len(packages["items"])
    busy["listening"] = _grow(
        busy.get("listening") or [], 60, lambda s, i: s.update(port=10000 + i)
    )
    if isinstance(busy.get("certificates"), list):
        busy["certificates"] = _grow(
            busy["certificates"], 20, lambda c, i: c.update(location=f"/etc/ssl/c{i}.pem#0")
        )
    return busy


def median_runs(fn: Callable[[], object]) -> float:
    return median_seconds(fn, REPEAT)


def main() -> None:
    ruleset = load_rules([builtin_packs_dir()])
    real = real_document()
    for name, document in (("this machine", real), ("busy server", busy_server(real))):
        text = json.dumps(document)
        baseline = median_runs(partial(json.loads, text))
        engine = median_runs(partial(evaluate, ruleset, document))
        statuses = [r.status for r in evaluate(ruleset, document)]
        counts = {s.value: statuses.count(s) for s in Status if statuses.count(s)}
        print(f"{name}: {len(text) / 1024:.0f} KiB, {len(ruleset.rules)} rules, {counts}")
        record(
            f"evaluate, {name}",
            engine * 1e3,
            "ms",
            baseline=baseline * 1e3,
            baseline_name="json.loads of the document",
        )
        record(f"documents evaluated per second, {name}", 1 / engine, "docs/s")
    if "--profile" in sys.argv[1:]:
        busy = busy_server(real)
        profile = cProfile.Profile()
        profile.runcall(lambda: [evaluate(ruleset, busy) for _ in range(REPEAT)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
