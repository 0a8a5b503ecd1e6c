"""Benchmark: what `canhgac-agent check` spends on its report, on one facts document.

`check` used to load the rule packs twice (once inside `agent.app.check`, once for
the remediation texts the results do not carry); now the outcome carries the ruleset
it evaluated. Records, as medians over BENCH_RUNS repetitions (default 20), side by
side in this run:

- the report pipeline in-process as before (check, a second load for the
  remediations, format) as the baseline, beside the pipeline now (one load);
- evaluating the built-in packs, loading them, and formatting the report at 100
  columns (vi, en), each beside the evaluation;
- a whole `canhgac-agent check --facts FILE` process (median wall time), beside a
  process that only imports the agent's CLI.

The facts come from `canhgac-agent collect --no-state` on this machine, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from figures import median_seconds, record

from agent.app import check
from agent.output.check import Layout, format_report, remediations
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
BIN = Path(sys.executable).parent


def median_runs(work: Callable[[], Any]) -> float:
    return median_seconds(work, RUNS)


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
    evaluate_s = median_runs(lambda: evaluate(ruleset, facts))
    load_s = median_runs(lambda: load_rules(packs))
    format_vi = median_runs(lambda: format_report(results, fixes, "vi", Layout(100)))
    format_en = median_runs(lambda: format_report(results, fixes, "en", Layout(100)))

    def pipeline_before() -> None:
        outcome = check(packs, facts)
        format_report(outcome.results, remediations(load_rules(packs)), "en", Layout(100))

    def pipeline_now() -> None:
        outcome = check(packs, facts)
        format_report(outcome.results, remediations(outcome.ruleset), "en", Layout(100))

    before_s, now_s = median_runs(pipeline_before), median_runs(pipeline_now)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        handle.write(facts_text)
        handle.flush()
        argv = [agent, "check", "--facts", handle.name]
        process_s = median_runs(
            lambda: subprocess.run(argv, capture_output=True, check=False, env=os.environ)
        )
    imports = [sys.executable, "-c", "import agent.cli.main"]
    import_s = median_runs(lambda: subprocess.run(imports, check=True, env=os.environ))
    print(f"rules: {len(results)}, runs: {RUNS} (medians)")
    ms = 1000
    record(
        "check report pipeline in-process (one rules load)",
        now_s * ms,
        "ms",
        baseline=before_s * ms,
        baseline_name="as before: a second load for remediations",
    )
    evaluation = "evaluate built-in packs"
    record(evaluation, evaluate_s * ms, "ms")
    for name, seconds in (
        ("load built-in packs", load_s),
        ("format_report vi", format_vi),
        ("format_report en", format_en),
    ):
        record(name, seconds * ms, "ms", baseline=evaluate_s * ms, baseline_name=evaluation)
    record(
        "whole check --facts process",
        process_s * ms,
        "ms",
        baseline=import_s * ms,
        baseline_name="python -c 'import agent.cli.main'",
    )


if __name__ == "__main__":
    main()
