"""Sampling G completions of a prompt: its tokens prefilled once and forked, against once per completion.

    python -m lazarus_cot_router.blas python bench/sample_prefill.py [--adapter DIR] [--queries 8] [-G 8] [--rounds 2]

``lazarus_cot_router.sampling.sample_completions`` (RL's completions, the rewriter's
second opinions) prefills each prompt once on top of the shared system-prompt prefix
and forks that cache for its ``G`` completions. The alternative gives the decoder ``G``
copies of every prompt, each prefilled on its own. Both sample the same lines under the
same constraint (``SampledChoice``, same seeds); the queries are MAWPS + ASDiv-A training
problems, the longest prompts the router sees. Each way runs once per round, in turn,
the order reversed every other round; the report is the fastest run of each, their
ratio, and whether the two drew the same lines.
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
    parser.add_argument("--adapter", default=None, help="adapter directory (default: the base model)")
    parser.add_argument("--queries", type=int, default=8, help="prompts sampled together")
    parser.add_argument("-G", "--num-generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each way")
    return parser


def sample_per_completion(model, tokenizer, prefix, suffixes, checks, G, **kw):
    """The alternative: every completion's prompt prefilled on its own."""
    from lazarus_cot_router.constrained_choice import SampledChoice
    from lazarus_cot_router.decoding import decode_batch

    choices = [SampledChoice(check, kw["temperature"], seed=(0, i)) for i, check in enumerate(checks)]
    prompts = [list(s) for s in suffixes for _ in range(G)]
    return decode_batch(model, tokenizer, prompts, prefix=prefix, max_tokens=kw["max_tokens"],
                        stop_token_ids=kw["stop_token_ids"], logits_processors=choices)


def main(argv=None) -> int:
    import corpora.mawps
    from lazarus_cot_router.decoding import SharedPrefix
    from lazarus_cot_router.models import load
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import encode_prompt, end_of_turn_id, router_system_prompt
    from lazarus_cot_router.sampling import sample_completions, token_checks

    args = build_parser().parse_args(argv)
    model, tokenizer = load(args.model, adapter_path=args.adapter)
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    queries = [e.query for e in corpora.mawps.examples("train")[: args.queries]]
    prefix_ids, _ = encode_prompt(tokenizer, system, "")
    suffixes = [encode_prompt(tokenizer, system, q)[1] for q in queries]
    prefix = SharedPrefix(model, prefix_ids)
    eot = end_of_turn_id(tokenizer)
    stops = sorted({eot, *tokenizer.eos_token_ids})
    G = args.num_generations
    kw = dict(temperature=0.7, max_tokens=48, stop_token_ids=[eot])

    def once():
        checks = token_checks(experts, tokenizer, queries, stops, G)
        groups = sample_completions(model, tokenizer, prefix, suffixes, num_generations=G, token_checks=checks, **kw)
        return [out.text for group in groups for out in group]

    def per_completion():
        checks = token_checks(experts, tokenizer, queries, stops, G)
        return [out.text for out in sample_per_completion(model, tokenizer, prefix, suffixes, checks, G, **kw)]

    ways = {"prefilled once per prompt": once, "prefilled per completion": per_completion}
    once()  # warm-up
    best: dict[str, float] = {}
    lines: dict[str, list[str]] = {}
    for round_ in range(args.rounds):
        for name in (list(ways) if round_ % 2 == 0 else list(reversed(ways))):
            start = time.perf_counter()
            lines[name] = ways[name]()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    tokens = sum(len(s) for s in suffixes) / len(suffixes)
    print(f"{len(queries)} MAWPS prompts (mean {tokens:.0f} tokens after the shared prefix) x {G} completions; "
          f"fastest of {args.rounds} rounds")
    slowest = max(best.values())
    for name, seconds in best.items():
        print(f"  {name:28s} {seconds:6.2f} s  {slowest / seconds:.2f}x")
    same = sum(a == b for a, b in zip(*lines.values()))
    print(f"same lines drawn: {same} of {len(queries) * G}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
