"""Second opinions on the MAWPS dev split: which of the sampled lines to keep, and for which problems.

    python -m lazarus_cot_router.blas python bench/self_consistency.py --adapter DIR [--samples 8]

The rewriter samples ``--samples`` lines beside the greedy one for every word
problem and keeps the likeliest line (the model's mean log-probability per
token) with a usual result (``Expert.usual_result``: in range and whole). On the
MAWPS dev split (n=267, a development set) this scores that default beside
greedy lines, the rule it replaced (sampling only for a greedy line whose result
is negative or fractional, about one word problem in eight, and taking the
result most usual samples agree on), and a majority vote over the samples' usual
results on every word problem (self-consistency) in which the greedy line
counts ``w`` times (``w`` 0, 1, 2). Samples are drawn as the rewriter draws them
(same temperature, same constraint); a vote with no usual result keeps the
greedy line.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GREEDY_WEIGHTS = (0, 1, 2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--adapter", required=True, help="adapter directory from `train`")
    parser.add_argument("--samples", type=int, default=8, help="lines sampled per word problem (default: 8)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N dev problems")
    parser.add_argument("--chunk", type=int, default=16, help="problems sampled per batch (default: 16)")
    return parser


def sample_votes(rewriter, queries: list[str], n: int) -> list[Counter]:
    """Per query, how many of ``n`` sampled lines gave each in-range ``(expert, result)``."""
    from lazarus_cot_router.prompts import encode_prompt
    from lazarus_cot_router.rewriter import RESAMPLE_TEMPERATURE, RouteResult
    from lazarus_cot_router.sampling import sample_completions, token_checks
    from lazarus_cot_router.sanitize import sanitize_query

    cleaned = [sanitize_query(q, rewriter.tokenizer)[0] for q in queries]
    suffixes = [encode_prompt(rewriter.tokenizer, rewriter.system_prompt, q)[1] for q in cleaned]
    checks = token_checks(rewriter.experts, rewriter.tokenizer, cleaned,
                          sorted({rewriter._eot, *rewriter.tokenizer.eos_token_ids}), n, rewriter.decoding)
    groups = sample_completions(rewriter.model, rewriter.tokenizer, rewriter._prefix, suffixes, num_generations=n,
                                temperature=RESAMPLE_TEMPERATURE, max_tokens=rewriter.max_tokens,
                                stop_token_ids=[rewriter._eot], token_checks=checks)
    votes = []
    for j, (query, group) in enumerate(zip(queries, groups)):
        in_range = rewriter._vote(RouteResult(query=query, raw=""), group, checks[j * n:(j + 1) * n])
        votes.append(Counter({key: len(lines) for key, lines in in_range.items()}))
    return votes


def vote(greedy, votes: Counter, expert, greedy_weight: int):
    """The result most usual lines agree on, the greedy one counted ``greedy_weight`` times."""
    tally = Counter({result: count for (name, result), count in votes.items()
                     if name == expert.name and expert.usual_result(result)})
    if greedy is not None and expert.usual_result(greedy):
        tally[greedy] += greedy_weight
    if not tally:
        return greedy
    return tally.most_common(1)[0][0]


def vote_on_unusual(greedy, votes: Counter, experts: dict, expert):
    """The rule before every word-problem line got a second opinion: a usual greedy result
    stands; otherwise the result most usual samples agree on, then a fractional greedy
    result, then the result most in-range samples agree on."""
    if greedy is not None and expert.usual_result(greedy):
        return greedy
    usual = Counter({key: count for key, count in votes.items() if experts[key[0]].usual_result(key[1])})
    if not usual and greedy is not None and expert.gives_result(greedy):
        return greedy
    tally = usual or votes
    if not tally:
        return None
    name, result = tally.most_common(1)[0][0]
    return result if name == expert.name else None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.rewriter import TrainedCoTRewriter
    from lazarus_cot_router.worker import run_on_model_thread
    from training.evaluate import evaluate, same_answer
    from training.suites import load_suite

    examples = load_suite("mawps-dev", limit=args.limit)
    rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter, resample=0)
    expert = rewriter.experts["word_problem"]
    greedy, unusual = [], 0
    for start in range(0, len(examples), args.chunk):
        for res in rewriter.route_batch([e.query for e in examples[start:start + args.chunk]]):
            executed = res.error is None and res.expert == expert.name
            greedy.append(res.result if executed else None)
            unusual += res.expert == expert.name and not (executed and expert.usual_result(res.result))
    votes = []
    for start in range(0, len(examples), args.chunk):
        queries = [e.query for e in examples[start:start + args.chunk]]
        votes += run_on_model_thread(sample_votes, rewriter, queries, args.samples)
        print(f"sampled {len(votes)}/{len(examples)}", file=sys.stderr, flush=True)

    def accuracy(results) -> float:
        return sum(same_answer(r, e.answer) for r, e in zip(results, examples) if r is not None) / len(examples)

    rewriter.resample = args.samples
    default = evaluate(rewriter, examples, progress=False)["execution_accuracy"]
    print(f"MAWPS dev, n={len(examples)}, execution accuracy ({args.samples} samples per vote)")
    print(f"{'greedy (resample 0)':<48} {100 * accuracy(greedy):.1f}%")
    print(f"{'  word-problem lines with an unusual result':<48} {unusual} (the rule before sampled for these)")
    print(f"{'a vote on unusual results only (the rule before)':<48} "
          f"{100 * accuracy([vote_on_unusual(g, v, rewriter.experts, expert) for g, v in zip(greedy, votes)]):.1f}%")
    print(f"{'the likeliest usual line on every one (default)':<48} {100 * default:.1f}%")
    for w in GREEDY_WEIGHTS:
        label = f"a vote on every one, greedy counted {w}x"
        print(f"{label:<48} {100 * accuracy([vote(g, v, expert, w) for g, v in zip(greedy, votes)]):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
