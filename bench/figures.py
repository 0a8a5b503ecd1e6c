"""The one place benchmarks record their figures, and the runner behind `make bench`.

A bench calls `record(...)` for each figure: the figure is printed on one line (value,
baseline, ratio value/baseline, goal) and, when the environment variable
CANHGAC_BENCH_JSON names a file, appended to it as one JSON object per line.

Run as a script, this module is the runner: it runs every `*.py` of a bench directory
(except itself and names starting with `_`) one after the other in a fresh
interpreter, each with CANHGAC_BENCH_JSON set to its own file, lets their output
through as it comes, then prints ONE table of every figure (bench, figure, value,
unit, baseline, ratio, goal) and writes them all to one JSON file. A bench that fails
is shown failed in the table and makes the runner exit 1, after the others ran; a
bench whose prerequisite is missing (root, a tool) calls `skip(reason)` and is shown
skipped with its reason, which is not a failure.

    python bench/figures.py [BENCH_DIR] [--json var/bench.json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

JSON_ENV = "CANHGAC_BENCH_JSON"
SKIPPED_EXIT = 77  # automake's exit status for "skipped"
HERE = Path(__file__).resolve()


def median_seconds(work: Callable[[], object], repeat: int) -> float:
    """The median wall time of `repeat` runs of `work` (medians: the machines are
    shared and noisy)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ratio_of(value: float, baseline: float | None) -> float | None:
    """value / baseline, or None when there is no baseline or it is zero (no ratio)."""
    if baseline is None or baseline == 0 or not math.isfinite(baseline):
        return None
    return value / baseline


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def record(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    goal: str = "",
) -> None:
    """Print one figure and, when CANHGAC_BENCH_JSON is set, append it as JSON."""
    ratio = ratio_of(value, baseline)
    line = f"FIGURE {name}: {_number(value)} {unit}"
    if baseline is not None:
        label = f" ({baseline_name})" if baseline_name else ""
        line += f"   baseline{label} {_number(baseline)} {unit}   ratio {_number(ratio)}"
    if goal:
        line += f"   goal: {goal}"
    print(line, flush=True)
    target = os.environ.get(JSON_ENV)
    if not target:
        return
    item = {
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "goal": goal,
    }
    # One write of one line in append mode: a bench's subprocesses may record too.
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(item) + "\n")


def skip(reason: str) -> NoReturn:
    """End this bench as skipped: a prerequisite is missing (said in the table)."""
    print(f"SKIPPED: {reason}", flush=True)
    target = os.environ.get(JSON_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"skipped": reason}) + "\n")
    raise SystemExit(SKIPPED_EXIT)


@dataclass(frozen=True)
class BenchRun:
    """One bench script's run: its exit status, wall time and recorded figures."""

    bench: str
    returncode: int
    seconds: float
    figures: tuple[dict[str, Any], ...]
    error: str = ""
    skipped: str = ""  # the reason, when the bench said it could not run here

    @property
    def failed(self) -> bool:
        if self.skipped and self.returncode == SKIPPED_EXIT and not self.error:
            return False
        return self.returncode != 0 or bool(self.error)


def bench_scripts(directory: Path) -> list[Path]:
    """The bench scripts of `directory`, sorted; not this helper, not `_private.py`."""
    return sorted(
        p
        for p in directory.glob("*.py")
        if p.name != HERE.name and not p.name.startswith("_") and p.is_file()
    )


def _read_figures(path: Path) -> tuple[tuple[dict[str, Any], ...], str, str]:
    """The figures a bench appended, an error if a line was not a figure object, and
    the reason it gave for skipping, if it did."""
    figures: list[dict[str, Any]] = []
    skipped = ""
    if not path.exists():
        return (), "", ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            return tuple(figures), f"figures line {number} is not JSON: {e}", skipped
        if isinstance(item, dict) and isinstance(item.get("skipped"), str):
            skipped = item["skipped"]
            continue
        if not isinstance(item, dict) or not {"figure", "value", "unit"} <= item.keys():
            return tuple(figures), f"figures line {number} is not a figure object", skipped
        figures.append(item)
    return tuple(figures), "", skipped


def run_bench(script: Path, workdir: Path, extra_env: dict[str, str] | None = None) -> BenchRun:
    figures_file = workdir / f"{script.stem}.jsonl"
    env = {**os.environ, **(extra_env or {}), JSON_ENV: str(figures_file)}
    # A bench in another directory (the runner's tests) still finds `figures`.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p
    )
    print(f"== {script.name}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(script)], env=env, check=False)
    seconds = time.perf_counter() - started
    figures, error, skipped = _read_figures(figures_file)
    return BenchRun(script.stem, done.returncode, seconds, figures, error, skipped)


def table(runs: list[BenchRun]) -> str:
    """One table of every figure of every bench; a failed bench gets a FAILED row."""
    header = ("bench", "figure", "value", "unit", "baseline", "ratio", "goal")
    rows: list[tuple[str, ...]] = []
    for run in runs:
        for f in run.figures:
            baseline = _number(f.get("baseline"))
            if f.get("baseline_name") and f.get("baseline") is not None:
                baseline += f" ({f['baseline_name']})"
            rows.append(
                (
                    run.bench,
                    str(f["figure"]),
                    _number(f["value"]),
                    str(f["unit"]),
                    baseline,
                    _number(f.get("ratio")),
                    str(f.get("goal", "")),
                )
            )
        if run.failed:
            why = run.error or f"exit {run.returncode}"
            rows.append((run.bench, f"FAILED ({why})", "-", "", "-", "-", ""))
        elif run.skipped:
            rows.append((run.bench, f"SKIPPED ({run.skipped})", "-", "", "-", "-", ""))
        elif not run.figures:
            rows.append((run.bench, "(no figures recorded)", "-", "", "-", "-", ""))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {2, 5}
    lines = []
    for r in [header, *rows]:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def document(runs: list[BenchRun]) -> dict[str, Any]:
    return {
        "benches": [
            {k: v for k, v in asdict(r).items() if k != "figures"} | {"failed": r.failed}
            for r in runs
        ],
        "figures": [{"bench": r.bench, **f} for r in runs for f in r.figures],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benches; one table of figures.")
    parser.add_argument("directory", nargs="?", type=Path, default=HERE.parent)
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--only", nargs="*", default=[], help="bench names (file stems)")
    args = parser.parse_args(argv)
    scripts = bench_scripts(args.directory)
    if args.only:
        unknown = set(args.only) - {s.stem for s in scripts}
        if unknown:
            parser.error(f"no such bench: {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.stem in args.only]
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-") as tmp:
        runs = [run_bench(s, Path(tmp)) for s in scripts]
    print()
    print(table(runs))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(args.json.name + ".tmp")
        partial.write_text(json.dumps(document(runs), indent=2) + "\n", encoding="utf-8")
        partial.replace(args.json)
        print(f"figures written to {args.json}")
    failed = [r.bench for r in runs if r.failed]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
