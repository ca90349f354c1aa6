"""MLX's own exp against ``lazarus_cot_router.fast_math``, side by side in one process.

    python -m lazarus_cot_router.blas python bench/fast_math.py [--model embedded] [--rounds 3]

Each round measures, once with mlx-lm's functions and once with the fast ones
(the order alternates between rounds): exp alone over 2**20 values, SFT steps of this project's trainer
(batch 8, last 10 blocks, the first step of each run left out: compilation),
a batched prefill of 8 routing prompts, and greedy decoding through
``mlx_lm.stream_generate``. Prints medians, the speed-up, and whether greedy
decoding wrote the same text both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mlx.core as mx  # noqa: E402

from lazarus_cot_router import fast_math  # noqa: E402
from lazarus_cot_router.models import load  # noqa: E402
from lazarus_cot_router.plugins import get_experts  # noqa: E402
from lazarus_cot_router.prompts import encode_prompt, router_system_prompt  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.data import generate_split, training_mix  # noqa: E402
from training.sft import setup_trainable, train_sft  # noqa: E402


def set_mode(model, fast: bool) -> None:
    os.environ["LAZARUS_COT_ROUTER_FAST_MATH"] = "1" if fast else "0"
    fast_math.restore()
    if fast:
        fast_math.install(model)


def time_exp(fast: bool, size: int = 1 << 20) -> float:
    """Nanoseconds per element of exp over ``size`` float32 values."""
    x = mx.random.normal((size,))
    f = fast_math.fast_exp if fast else mx.exp
    mx.eval(f(x))
    tic = time.perf_counter()
    for _ in range(10):
        mx.eval(f(x))
    return (time.perf_counter() - tic) / 10 / size * 1e9


def time_sft(model, tokenizer, examples, system: str) -> float:
    """Seconds per example over the steps after the first."""
    config = TrainConfig(batch_size=8, num_layers=10, learning_rate=1e-9, warmup_steps=1, checkpoint_every=0)
    steps = []
    train_sft(model, tokenizer, examples, config, system=system, on_step=steps.append, progress=False)
    return sum(s["seconds"] for s in steps[1:]) / (8 * len(steps[1:]))


def time_prefill(model, tokenizer, queries, system: str) -> float:
    """Seconds for one forward pass over 8 right-padded routing prompts."""
    rows = [sum(encode_prompt(tokenizer, system, q), []) for q in queries]
    width = max(map(len, rows))
    tokens = mx.array([r + [0] * (width - len(r)) for r in rows])
    mx.eval(model(tokens))
    tic = time.perf_counter()
    mx.eval(model(tokens))
    return time.perf_counter() - tic


def time_decode(model, tokenizer, query: str, system: str, tokens: int) -> tuple[float, str]:
    """Generated tokens per second (mlx-lm's own count) and the text."""
    from mlx_lm import stream_generate

    prompt = sum(encode_prompt(tokenizer, system, query), [])
    text, last = "", None
    for last in stream_generate(model, tokenizer, prompt, max_tokens=tokens):
        text += last.text
    return last.generation_tps, text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded", help="model SPEC (default: the embedded SmolLM2-135M)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per mode")
    parser.add_argument("--examples", type=int, default=40, help="SFT examples per measurement (batches of 8)")
    parser.add_argument("--decode-tokens", type=int, default=48, help="tokens generated per decode measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    model, tokenizer = load(args.model)
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    examples = generate_split("train", args.examples, 0, experts=experts, mix=training_mix(list(experts.values())))
    queries = [ex.query for ex in examples[:8]]
    setup_trainable(model, "full", 10)
    results = {mode: {"exp": [], "sft": [], "prefill": [], "decode": []} for mode in ("mlx", "fast")}
    texts = {}
    for round_ in range(args.rounds):
        for mode in (("mlx", "fast") if round_ % 2 == 0 else ("fast", "mlx")):
            set_mode(model, mode == "fast")
            results[mode]["exp"].append(time_exp(mode == "fast"))
            results[mode]["sft"].append(time_sft(model, tokenizer, examples, system))
            results[mode]["prefill"].append(time_prefill(model, tokenizer, queries, system))
            tps, texts[mode] = time_decode(model, tokenizer, "Tell me about the moon in three sentences.", system,
                                           args.decode_tokens)
            results[mode]["decode"].append(tps)
            print(f"round {round_ + 1} {mode}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in results[mode].items()),
                  file=sys.stderr, flush=True)
    set_mode(model, True)
    median = {mode: {k: statistics.median(v) for k, v in r.items()} for mode, r in results.items()}
    summary = {
        "model": args.model, "rounds": args.rounds, "median": median,
        "speedup": {"exp": median["mlx"]["exp"] / median["fast"]["exp"],
                    "sft": median["mlx"]["sft"] / median["fast"]["sft"],
                    "prefill": median["mlx"]["prefill"] / median["fast"]["prefill"],
                    "decode": median["fast"]["decode"] / median["mlx"]["decode"]},
        "same_greedy_text": texts["mlx"] == texts["fast"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print("| measure | mlx exp | fast_math | speed-up |\n| --- | --- | --- | --- |")
    rows = [("exp, 2**20 float32 values (ns/element)", "exp", "{:.1f}"), ("SFT (s/example)", "sft", "{:.3f}"), ("prefill, 8 prompts (s)", "prefill", "{:.3f}"),
            ("decode (tokens/s)", "decode", "{:.1f}")]
    for label, key, fmt in rows:
        print(f"| {label} | {fmt.format(median['mlx'][key])} | {fmt.format(median['fast'][key])} | "
              f"{summary['speedup'][key]:.2f}x |")
    print(f"\nGreedy decoding wrote the same {args.decode_tokens} tokens both ways: {summary['same_greedy_text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
