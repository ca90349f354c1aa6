"""How much faster can batched routing be than sequential, on this machine?

    python -m lazarus_cot_router.blas python bench/batched_ceiling.py [--rounds 3]

``lazarus-cot-router bench`` reports the trained router's batched throughput
over its sequential one. This measures what bounds that ratio: the cost per
token of the two phases of a query, the prefill of its own prompt tokens (after
the shared system prompt) and the decoding of its routing line, each one query
at a time and a whole batch at a time, in one process, alternating, on the
bench's default queries (24 held-out + the 12 acceptance cases; the line
lengths are their gold lines'). The ceiling assumes a perfect batch: every
query prefilled in one pass and every decoding step running the whole batch,
no padding, no tail of long lines, no constrained-decoding work. A prefill
that costs as much per token batched as alone caps the ratio however cheap
batched decoding gets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC (the adapter changes weights, not cost)")
    parser.add_argument("--heldout", type=int, default=24, help="held-out queries besides the acceptance cases")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every measurement")
    return parser


def filled_cache(model, prefix: list[int], batch: int):
    """A KV cache holding ``prefix`` for each of ``batch`` sequences."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array([prefix] * batch), cache=cache)
    mx.eval([c.state for c in cache])
    return cache


def seconds_per_token(model, prefix: list[int], batch: int, length: int, steps: int) -> float:
    """Seconds per token of ``steps`` forward passes of ``length`` tokens over a
    batch of ``batch`` sequences, after ``prefix``: a prefill when ``length`` > 1,
    decoding steps when it is 1."""
    import mlx.core as mx

    cache = filled_cache(model, prefix, batch)
    tokens = mx.array([[prefix[-1]] * length] * batch)
    start = time.perf_counter()
    for _ in range(steps):
        logits = model(tokens, cache=cache)
        # As mlx-lm's generators: a prefill evaluates the cache only (its logits are never
        # computed), a decoding step its logits.
        mx.eval(logits if length == 1 else [c.state for c in cache])
    return (time.perf_counter() - start) / (steps * batch * length)


def main(argv=None) -> int:
    from lazarus_cot_router.models import load
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import encode_prompt, router_system_prompt
    from training.data import generate_split
    from training.query_files import load_robustness

    args = build_parser().parse_args(argv)
    experts = get_experts()
    model, tokenizer = load(args.model)
    system = router_system_prompt(list(experts.values()))
    examples = list(generate_split("heldout", args.heldout, 0, experts=experts)) + list(load_robustness())
    prefix, _ = encode_prompt(tokenizer, system, "")
    prompt_lengths = [len(encode_prompt(tokenizer, system, ex.query)[1]) for ex in examples]
    line_lengths = [len(tokenizer.encode(f"{ex.expert}: {ex.spec} ->", add_special_tokens=False)) for ex in examples]
    n, mean_prompt = len(examples), round(statistics.mean(prompt_lengths))
    decode_prefix = prefix + [prefix[-1]] * mean_prompt  # a decoding step sees the prefix and the prompt
    phases = {
        "prefill, one query": (prefix, 1, mean_prompt, 2),
        "prefill, batch": (prefix, n, mean_prompt, 1),
        "decode, one query": (decode_prefix, 1, 1, 12),
        "decode, batch": (decode_prefix, n, 1, 12),
    }
    seconds_per_token(model, prefix, 2, 4, 1)  # warm-up
    measured: dict[str, list[float]] = {name: [] for name in phases}
    for round_ in range(args.rounds):
        for name in (list(phases) if round_ % 2 == 0 else list(reversed(phases))):
            measured[name].append(seconds_per_token(model, *phases[name]))
    cost = {name: statistics.median(values) for name, values in measured.items()}
    sequential = sum(prompt_lengths) * cost["prefill, one query"] + sum(line_lengths) * cost["decode, one query"]
    batched = sum(prompt_lengths) * cost["prefill, batch"] + sum(line_lengths) * cost["decode, batch"]
    free_decode = sum(prompt_lengths) * cost["prefill, batch"]

    print(f"{n} queries: {statistics.mean(prompt_lengths):.1f} prompt tokens after the shared {len(prefix)}, "
          f"{statistics.mean(line_lengths):.1f} line tokens per query (medians of {args.rounds} rounds)")
    for name, value in cost.items():
        print(f"  {name:20s} {value * 1000:7.2f} ms/token")
    print(f"  prefill: batched / one query  {cost['prefill, one query'] / cost['prefill, batch']:.2f}x cheaper per token")
    print(f"  decode:  batched / one query  {cost['decode, one query'] / cost['decode, batch']:.2f}x cheaper per token")
    print(f"sequential {sequential / n:.3f} s/query, perfect batch {batched / n:.3f} s/query")
    print(f"ceiling of batched / sequential throughput: {sequential / batched:.2f}x "
          f"({sequential / free_decode:.2f}x if batched decoding were free)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
