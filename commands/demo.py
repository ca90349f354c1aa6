"""``lazarus-cot-router demo``: the main job, end to end on one model.

Trains the default recipe (``lazarus-cot-router train`` with its defaults),
calibrates the hidden-state router, benchmarks the trained router against the few-shot
baseline, and prints a short summary with the path of the report. Each step is
the same code as its own subcommand; a finished step is not redone when its
output is already there (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus-cot-router demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    parser.add_argument("--out", default="runs/demo", help="directory for the run, calibration and report")
    parser.add_argument("--fresh", action="store_true", help="delete --out first")
    parser.add_argument("--bench-queries", type=int, default=16,
                        help="held-out queries in the bench, besides the 12 acceptance cases (default: 16)")
    parser.add_argument("--latency-queries", type=int, default=4,
                        help="queries timed one by one per rewriter (default: 4; few-shot takes ~10 s each)")
    return parser


def _step(title: str) -> float:
    print(f"\n== {title}", file=sys.stderr, flush=True)
    return time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir, calib_dir, bench_dir = out / "run", out / "calibration", out / "bench"
    started = time.perf_counter()

    from training import train
    from training.checkpoint import checkpoint_path

    t = _step("train: the default recipe (lazarus-cot-router train --help)")
    if not (run_dir / "adapters.safetensors").exists():
        # A run killed before its first checkpoint left only its config: start it again.
        again = ["--resume"] if checkpoint_path(run_dir).exists() else ["--overwrite"]
        # The bench below measures the adapter; a held-out pass here would add a minute.
        code = train.main(["--model", args.model, "--out", str(run_dir), "--eval-examples", "0", *again])
        if code:
            return code
    print(f"   trained in {time.perf_counter() - t:.0f}s -> {run_dir}", file=sys.stderr)

    from calibration import calibrate

    t = _step("calibrate: expert directions from hidden states")
    if not (calib_dir / "calibration.yaml").exists():
        code = calibrate.main(["--model", args.model, "--adapter", str(run_dir), "--out", str(calib_dir)])
        if code:
            return code
    print(f"   calibrated in {time.perf_counter() - t:.0f}s -> {calib_dir}", file=sys.stderr)

    from . import bench

    t = _step("bench: trained router vs the few-shot baseline")
    bench_args = ["--model", args.model, "--adapter", str(run_dir), "--calibration", str(calib_dir), "--out", str(bench_dir)]
    # The batched pass runs every rewriter on the same weights before the timed calls, so the
    # demo skips bench's extra warm-up call (~40 s for few-shot's whole-prompt rewrite).
    bench_args += ["--heldout", str(args.bench_queries), "--latency-queries", str(args.latency_queries), "--warmup", "0"]
    code = bench.main(bench_args)
    if code:
        return code
    results = json.loads((bench_dir / "results.json").read_text())
    print(f"\n== summary ({time.perf_counter() - started:.0f}s)")
    print(bench.format_summary(results))
    print(f"report: {bench_dir / 'report.md'}")
    return 0
