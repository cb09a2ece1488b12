"""Suite benchmark: wall time of a whole suite from a cold cache, report generation time, and
bit-for-bit reproducibility of every metric when the suite is rerun with the same seeds.

Cold means what a user sees on a fresh clone: judges, base and retrain models are trained into an
empty cache (``--warm`` reuses ``$GENUNLEARN_CACHE`` instead). ``--repro`` runs the suite a second
time into a second empty cache and compares every metric except timings.

    python benchmarks/suite.py --suite quick [--repro] [--out runs/suite-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = {"quick": 600, "full": 3600}
REPORT_TARGET = 10.0
TIMING_KEYS = {"seconds", "wall_seconds", "time_ratio", "train_seconds"}


def timed_suite(suite: str, out: Path, cache: Path | None) -> float:
    from genunlearn.bench.runner import run_suite

    if cache is not None:
        os.environ["GENUNLEARN_CACHE"] = str(cache)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    run_suite(suite, out, log=lambda line: print(f"  {time.perf_counter() - t0:7.1f}s {line}", flush=True))
    return time.perf_counter() - t0


def all_metrics(out: Path) -> dict[str, dict]:
    from genunlearn.eval.renamed import current_names

    return {
        str(p.parent.relative_to(out)): current_names(json.loads(p.read_text()))
        for p in sorted(out.glob("*/*/metrics.json"))
    }


def strip_timings(obj):
    if isinstance(obj, dict):
        return {k: strip_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [strip_timings(v) for v in obj]
    return obj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="quick")
    ap.add_argument("--out", default="runs/suite-bench")
    ap.add_argument("--warm", action="store_true", help="use $GENUNLEARN_CACHE instead of an empty cache")
    ap.add_argument(
        "--repro", action="store_true", help="run a second time into a second empty cache and compare metrics"
    )
    args = ap.parse_args()
    from genunlearn.bench.report import build_report

    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="genunlearn-cache-") as tmp:
        first = out / "run1"
        print(f"## suite {args.suite}: run 1 ({'warm' if args.warm else 'cold'} cache)")
        seconds = timed_suite(args.suite, first, None if args.warm else Path(tmp) / "c1")
        t0 = time.perf_counter()
        report = build_report(first)
        report_seconds = time.perf_counter() - t0
        cells = all_metrics(first)
        cell_sum = sum(m["wall_seconds"] for m in cells.values())
        target = TARGET_SECONDS.get(args.suite)
        verdict = "" if target is None else f"  {'PASS' if seconds <= target else 'MISS'} (target ≤ {target} s)"
        print(f"\nsuite {args.suite}: {len(cells)} cells, wall {seconds:.1f} s (cells {cell_sum:.1f} s){verdict}")
        print(
            f"report: {report} in {report_seconds:.2f} s  {'PASS' if report_seconds <= REPORT_TARGET else 'MISS'} (target ≤ {REPORT_TARGET:.0f} s)\n"
        )
        print(report.read_text(), flush=True)
        if args.repro:
            print(f"\n## suite {args.suite}: run 2 (second empty cache, same seeds)")
            timed_suite(args.suite, out / "run2", Path(tmp) / "c2")
            second = all_metrics(out / "run2")
            differ = [c for c in cells if strip_timings(cells[c]) != strip_timings(second.get(c, {}))]
            n_values = sum(len(strip_timings(m)) for m in cells.values())
            print(
                f"reproducibility: {len(cells) - len(differ)}/{len(cells)} cells bit-identical ({n_values} metric entries compared)  {'PASS' if not differ else 'MISS: ' + ', '.join(differ)}"
            )


if __name__ == "__main__":
    main()
