"""Benchmark: what `canhgac-agent check` spends on its report, on one facts document.

`check` loads the rule packs twice (once inside `agent.app.check`, once for the
remediation texts the results do not carry), so the second load is the cost of
showing remediations. Prints, as medians over BENCH_RUNS repetitions (default 20),
side by side in this run:

- evaluating the built-in packs over the document (the baseline: the work `check`
  must do anyway),
- loading the built-in packs (the extra load),
- formatting the report (`format_report`) at 100 columns, vi and en,
- a whole `canhgac-agent check --facts FILE` process (median wall time), for scale.

The facts come from `canhgac-agent collect --no-state` on this machine, once.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.output.check import Layout, format_report, remediations
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
BIN = Path(sys.executable).parent


def median_seconds(work: Callable[[], Any]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    agent = str(BIN / "canhgac-agent")
    facts_text = subprocess.run(
        [agent, "collect", "--no-state"], capture_output=True, text=True, check=True
    ).stdout
    facts = json.loads(facts_text)
    packs = [builtin_packs_dir()]
    ruleset = load_rules(packs)
    results = evaluate(ruleset, facts)
    fixes = remediations(ruleset)
    evaluate_s = median_seconds(lambda: evaluate(ruleset, facts))
    load_s = median_seconds(lambda: load_rules(packs))
    format_vi = median_seconds(lambda: format_report(results, fixes, "vi", Layout(100)))
    format_en = median_seconds(lambda: format_report(results, fixes, "en", Layout(100)))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        handle.write(facts_text)
        handle.flush()
        argv = [agent, "check", "--facts", handle.name]
        process_s = median_seconds(
            lambda: subprocess.run(argv, capture_output=True, check=False, env=os.environ)
        )
    print(f"rules: {len(results)}, runs: {RUNS} (medians)")
    rows = [
        ("evaluate built-in packs (baseline)", evaluate_s),
        ("load built-in packs (extra load)", load_s),
        ("format_report vi", format_vi),
        ("format_report en", format_en),
        ("whole check process", process_s),
    ]
    for name, seconds in rows:
        print(f"{name:36} {seconds * 1000:9.2f} ms  x{seconds / evaluate_s:.2f} of baseline")
    print(f"extra load / whole check process     {load_s / process_s:.1%}")


if __name__ == "__main__":
    main()
