"""A long prompt prefilled in one forward pass against steps of a few hundred tokens.

    python -m lazarus_cot_router.blas python bench/prefill_steps.py [--steps 2048,512,128] [--rounds 2]

The prompt is the few-shot baseline's for one query (about 1,750 tokens on the
embedded model). ``lazarus_cot_router.decoding`` prefills prompts in steps of
``PREFILL_STEP_SIZE`` tokens; mlx-lm's default is 2,048, one step for this
prompt. Every step size runs once per round, in turn, the order reversed every
other round; the report is the fastest run of each and its ratio to the
slowest step size, with the largest difference between the final
positions' logits of two step sizes (they compute the same thing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--steps", default="2048,512,128", help="comma-separated prefill step sizes")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every step size")
    return parser


def prefill(model, ids: list[int], step: int):
    """Last-position logits of ``ids`` prefilled ``step`` tokens at a time, and the seconds it took."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    tokens = mx.array(ids)[None]
    start = time.perf_counter()
    for i in range(0, len(ids), step):
        logits = model(tokens[:, i : i + step], cache=cache)
        mx.eval(logits[:, -1], [c.state for c in cache])
    return logits[0, -1], time.perf_counter() - start


def main(argv=None) -> int:
    import mlx.core as mx

    from lazarus_cot_router.few_shot import FewShotCoTRewriter
    from lazarus_cot_router.models import load

    args = build_parser().parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    loaded = load(args.model)
    model, tokenizer = loaded
    few_shot = FewShotCoTRewriter(model=args.model, examples_per_expert=3, loaded=loaded)
    ids = tokenizer.encode(few_shot.build_prompt("Current time in London, answer in french"))
    prefill(model, ids[:64], 64)  # warm-up
    best: dict[int, float] = {}
    last: dict[int, mx.array] = {}
    for round_ in range(args.rounds):
        for step in (steps if round_ % 2 == 0 else list(reversed(steps))):
            last[step], seconds = prefill(model, ids, step)
            best[step] = min(best.get(step, seconds), seconds)
    slowest = max(best.values())
    print(f"prompt: {len(ids)} tokens (few-shot, 3 examples per expert); fastest of {args.rounds} rounds")
    for step in steps:
        print(f"  step {step:5d}: {best[step]:6.2f} s  {slowest / best[step]:.2f}x")
    gap = max(float(mx.abs(last[a] - last[b]).max()) for a in steps for b in steps)
    print(f"largest difference between final logits: {gap:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
