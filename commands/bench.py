"""``lazarus-cot-router bench``: the trained router against the few-shot baseline.

Runs, in one process, on the same weights (loaded once: the base model for the
baselines, the base model with the adapter for the trained router) and the same
queries (default: held-out queries + the public acceptance cases):

* ``few-shot``: Lazarus's ``FewShotCoTRewriter`` (3 examples per expert);
* ``system-prompt``: the base model with the router system prompt, untrained;
* ``trained-cot``: the trained router, reading the route from its text;
* ``trained-cot-hidden``: the trained router, reading the route from hidden
  states (when ``--calibration`` is given and hidden routing is supported).

Accuracy and batched throughput come from one pass of ``rewrite_batch``-sized
batches, alternating between rewriters batch by batch; per-query latency comes
from sequential ``rewrite`` calls, round-robin across rewriters query by query,
after a warm-up, so machine noise hits every rewriter alike. Writes
``results.json``, ``report.md`` and PNG plots to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .bench_report import compare, confusion_matrix, format_summary, write_outputs

REWRITERS = ("few-shot", "system-prompt", "trained-cot", "trained-cot-hidden")
DESCRIPTIONS = {
    "few-shot": "FewShotCoTRewriter on the base model (Lazarus's baseline)",
    "system-prompt": "base model with the router system prompt, untrained",
    "trained-cot": "trained router, route read from the text",
    "trained-cot-hidden": "trained router, route read from hidden states",
}


@dataclass
class Routed:
    """What one rewriter decided for one query, in routing terms."""

    expert: str | None
    spec: str | None
    raw: str
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    generated_tokens: int = 0


@dataclass
class Contender:
    """A rewriter under test with what was measured on it."""

    name: str
    rewriter: object
    route: Callable[[Sequence[str]], list[Routed]]
    batch_size: int = 64
    routed: list[Routed] = field(default_factory=list)
    batch_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    mlx_peak: int = 0
    rss_peak: int = 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus-cot-router bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", default=None,
                        help="adapter directory from `train` (default: none; trained-cot then runs the untrained base)")
    parser.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    parser.add_argument("--queries", default=None, help="YAML query file; replaces the held-out + acceptance set")
    parser.add_argument("--heldout", type=int, default=40, help="held-out queries (default: 40)")
    parser.add_argument("--no-acceptance", action="store_true", help="leave out the 12 acceptance cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    parser.add_argument("--latency-queries", type=int, default=12, help="queries timed one by one (default: 12)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rewrite calls per rewriter (default: 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="queries per rewrite_batch call (default: 64)")
    parser.add_argument("--few-shot-batch-size", type=int, default=8,
                        help="queries per few-shot rewrite_batch call; its prompts are ~1800 tokens (default: 8)")
    parser.add_argument("--max-tokens", type=int, default=None, help="trained router's token limit (default: its own)")
    parser.add_argument("--few-shot-max-tokens", type=int, default=200, help="few-shot token limit (default: 200, as Lazarus)")
    parser.add_argument("--calibration", default=None, help="calibration directory for hidden-state routing")
    parser.add_argument("--decoding", choices=("free", "generic", "full"), default="generic",
                        help="decoding of the trained and system-prompt routers (default: generic; see `eval --help`)")
    parser.add_argument("--rewriters", default=",".join(REWRITERS), help=f"comma list (default: {','.join(REWRITERS)})")
    parser.add_argument("--out", default="runs/bench", help="output directory (default: runs/bench)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def load_examples(args) -> list:
    from training.data import generate_split
    from training.query_files import load_queries, load_robustness

    if args.queries:
        return list(load_queries(args.queries))
    examples = list(generate_split("heldout", args.heldout, seed=args.seed)) if args.heldout > 0 else []
    if not args.no_acceptance:
        examples += list(load_robustness())
    return examples


def pick_latency_examples(examples: Sequence, n: int) -> list:
    """Up to ``n`` examples, taking the gold experts in turn so each is timed."""
    by_expert = defaultdict(list)
    for ex in examples:
        by_expert[ex.expert].append(ex)
    queues = list(by_expert.values())
    picked = []
    while len(picked) < min(n, len(examples)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


def route_with(rewriter, queries: Sequence[str], shared_prefix_tokens: int) -> list[Routed]:
    """``rewriter.rewrite_batch`` (route, then action), keeping the route results."""
    routed = []
    for r in rewriter.route_batch(queries):
        rewriter.to_action(r)
        routed.append(Routed(r.expert, r.spec, r.raw, r.prompt_tokens,
                             max(0, r.prompt_tokens - shared_prefix_tokens), r.generated_tokens))
    return routed


def route_trained(rewriter, queries: Sequence[str]) -> list[Routed]:
    return route_with(rewriter, queries, len(rewriter.prefix_ids))


def build_contenders(args, names: Sequence[str]) -> tuple[list[Contender], dict[str, str]]:
    """The rewriters to run, on weights loaded once; and why others are not run."""
    from lazarus_cot_router.few_shot import FewShotCoTRewriter
    from lazarus_cot_router.models import load
    from lazarus_cot_router.rewriter import DEFAULT_MAX_TOKENS, TrainedCoTRewriter

    limit = {"max_tokens": args.max_tokens or DEFAULT_MAX_TOKENS, "decoding": args.decoding}
    base = load(args.model)
    adapted = load(args.model, adapter_path=args.adapter) if args.adapter else base
    contenders, unavailable = [], {}
    for name in names:
        if name == "few-shot":
            options = dict(model=args.model, examples_per_expert=3, max_tokens=args.few_shot_max_tokens, loaded=base)
            # Latency is timed as Lazarus runs it (the whole prompt per query);
            # the batched accuracy pass caches the part before the query, which
            # gives the same actions far sooner.
            rw = FewShotCoTRewriter(**options)
            cached = FewShotCoTRewriter(cache_prefix=True, **options)
            contenders.append(Contender(name, rw, lambda q, rw=cached: route_with(rw, q, 0), args.few_shot_batch_size))
        elif name == "system-prompt":
            rw = TrainedCoTRewriter(model=args.model, adapter=None, loaded=base, **limit)
            contenders.append(Contender(name, rw, lambda q, rw=rw: route_trained(rw, q), args.batch_size))
        elif name == "trained-cot":
            rw = TrainedCoTRewriter(model=args.model, adapter=args.adapter, loaded=adapted, **limit)
            contenders.append(Contender(name, rw, lambda q, rw=rw: route_trained(rw, q), args.batch_size))
        elif name == "trained-cot-hidden":
            if not args.calibration:
                unavailable[name] = "not available: no --calibration given"
                continue
            try:
                rw = TrainedCoTRewriter(model=args.model, adapter=args.adapter, routing="hidden",
                                        calibration=args.calibration, loaded=adapted, **limit)
            except Exception as exc:  # any reason it cannot run is reported, not raised
                unavailable[name] = f"not available: {type(exc).__name__}: {exc}"
                continue
            contenders.append(Contender(name, rw, lambda q, rw=rw: route_trained(rw, q), args.batch_size))
    return contenders, unavailable


def reset_rss_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_peak_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(contender: Contender, call: Callable, *args):
    """``call(*args)`` and the seconds it took, tracking the contender's peak memory."""
    import mlx.core as mx

    mx.reset_peak_memory()
    reset_rss_peak()
    start = time.perf_counter()
    value = call(*args)
    seconds = time.perf_counter() - start
    contender.mlx_peak = max(contender.mlx_peak, mx.get_peak_memory())
    contender.rss_peak = max(contender.rss_peak, rss_peak_bytes())
    return value, seconds


def run_passes(contenders: list[Contender], examples: Sequence, latency_examples: Sequence, args) -> None:
    """Warm-up, then the batched pass (accuracy, throughput) alternating between
    rewriters chunk by chunk, then the sequential pass (latency) round-robin
    query by query."""
    from tqdm import tqdm

    queries = [ex.query for ex in examples]
    timed = [ex.query for ex in latency_examples]
    warm = (timed or queries)[: args.warmup]
    chunks = list(batched(queries, args.batch_size))
    calls = sum(len(list(batched(chunk, c.batch_size))) for chunk in chunks for c in contenders)
    total = len(contenders) * (len(warm) + len(timed)) + calls
    with tqdm(total=total, desc="bench", unit="call", disable=args.quiet, file=sys.stderr) as bar:
        for c in contenders:
            bar.set_postfix_str(f"warm-up {c.name}")
            for q in warm:
                c.rewriter.rewrite(q)
                bar.update()
        for i, chunk in enumerate(chunks):
            for c in rotated(contenders, i):
                bar.set_postfix_str(f"batch {i + 1}/{len(chunks)} {c.name}")
                for batch in batched(chunk, c.batch_size):
                    routed, seconds = measure(c, c.route, batch)
                    c.routed.extend(routed)
                    c.batch_seconds += seconds
                    bar.update()
        for c in contenders:
            c.latencies = [0.0] * len(timed)
        for i, q in enumerate(timed):
            for c in rotated(contenders, i):
                bar.set_postfix_str(f"latency {i + 1}/{len(timed)} {c.name}")
                _, c.latencies[i] = measure(c, c.rewriter.rewrite, q)
                bar.update()


def batched(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rotated(items: list, shift: int) -> list:
    if not items:
        return items
    k = shift % len(items)
    return items[k:] + items[:k]


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def summarize_contender(c: Contender, examples: Sequence, experts: dict, sequential_n: int) -> dict:
    from training.evaluate import score_one, summarize

    rows = []
    for ex, r in zip(examples, c.routed, strict=True):
        row = score_one(ex, r.expert, r.spec, experts)
        row["raw"] = r.raw
        rows.append(row)
    accuracy = summarize(rows, [ex.tags for ex in examples])
    failures = accuracy.pop("failures")
    n = len(c.routed)
    seq_total = sum(c.latencies)
    batched_qps = n / c.batch_seconds if c.batch_seconds > 0 else None
    sequential_qps = sequential_n / seq_total if seq_total > 0 else None
    return {
        "available": True,
        "description": DESCRIPTIONS[c.name],
        "accuracy": accuracy,
        "confusion": confusion_matrix(rows, list(experts)),
        "latency": {"n": len(c.latencies), "p50_s": percentile(c.latencies, 50), "p95_s": percentile(c.latencies, 95),
                    "mean_s": float(np.mean(c.latencies)) if c.latencies else None, "samples_s": c.latencies},
        "throughput": {"batch_size": c.batch_size, "batched_n": n, "batched_seconds": c.batch_seconds,
                       "batched_qps": batched_qps, "sequential_qps": sequential_qps,
                       "batched_over_sequential": batched_qps / sequential_qps if batched_qps and sequential_qps else None},
        "tokens": {key: float(np.mean([getattr(r, key) for r in c.routed])) if n else 0.0
                   for key in ("prompt_tokens", "prefill_tokens", "generated_tokens")},
        "memory": {"mlx_peak_mb": c.mlx_peak / 2**20, "rss_peak_mb": c.rss_peak / 2**20},
        "failures": [{k: f.get(k) for k in ("query", "want_expert", "want_spec", "got_expert", "got_spec", "raw")}
                     for f in failures],
    }


def machine_info() -> dict:
    import mlx.core as mx

    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "mlx": mx.__version__, "device": str(mx.default_device())}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        info["memory_gb"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        info["load_average"] = os.getloadavg()
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import mlx_lm

        info["mlx_lm"] = mlx_lm.__version__
    except (ImportError, AttributeError):
        pass
    try:
        from lazarus_cot_router.blas import blas_in_use

        info["blas"] = blas_in_use()
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.rewriters.split(",") if n.strip()]
    bad = [n for n in names if n not in REWRITERS]
    if bad or min(args.batch_size, args.few_shot_batch_size) < 1 or min(args.latency_queries, args.warmup) < 0:
        why = f"unknown rewriters {bad}; choose from {list(REWRITERS)}" if bad else "batch sizes must be >= 1, counts >= 0"
        print(f"lazarus-cot-router bench: {why}", file=sys.stderr)
        return 2
    from lazarus_cot_router.models import ModelLoadError
    from lazarus_cot_router.rewriter import DEFAULT_MAX_TOKENS

    started = time.perf_counter()
    try:
        examples = load_examples(args)
        if not examples:
            raise ValueError("no queries to run")
        contenders, unavailable = build_contenders(args, names)
    except (OSError, ValueError, ModelLoadError) as exc:
        print(f"lazarus-cot-router bench: {exc}", file=sys.stderr)
        return 2
    latency_examples = pick_latency_examples(examples, args.latency_queries)
    run_passes(contenders, examples, latency_examples, args)
    experts = contenders[0].rewriter.experts if contenders else {}
    rewriters = {}
    for name in names:
        c = next((c for c in contenders if c.name == name), None)
        if c is None:
            rewriters[name] = {"available": False, "description": DESCRIPTIONS[name], "reason": unavailable[name]}
            continue
        rewriters[name] = summarize_contender(c, examples, experts, len(latency_examples))
    results = {
        "command": "lazarus-cot-router bench " + shlex.join(argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {"model": args.model, "adapter": args.adapter, "calibration": args.calibration,
                   "queries": args.queries, "heldout": 0 if args.queries else args.heldout,
                   "acceptance": not (args.queries or args.no_acceptance), "seed": args.seed,
                   "n_queries": len(examples), "latency_queries": len(latency_examples),
                   "warmup": args.warmup, "batch_size": args.batch_size, "few_shot_batch_size": args.few_shot_batch_size,
                   "max_tokens": args.max_tokens or DEFAULT_MAX_TOKENS, "few_shot_max_tokens": args.few_shot_max_tokens},
        "experts": list(experts),
        "rewriters": rewriters,
        "comparison": compare(rewriters),
        "bench_seconds": time.perf_counter() - started,
    }
    out = write_outputs(results, Path(args.out))
    if not args.quiet:
        print(format_summary(results))
        print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
