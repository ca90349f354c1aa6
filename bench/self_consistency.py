"""Self-consistency on the MAWPS dev split: a vote over sampled lines for every word problem.

    python -m lazarus_cot_router.blas python bench/self_consistency.py --adapter DIR [--samples 16]

The rewriter samples second opinions only for a line whose result its expert does
not usually give (``bench/second_opinions.py``). This measures the alternative of
sampling for every word-problem line and taking the result most lines agree on
(self-consistency): on the MAWPS dev split (n=267, a development set), it scores
greedy lines, the default second opinions with the same number of samples, and a
vote over the samples' usual results (``Expert.usual_result``: in range and
whole) in which the greedy line counts ``w`` times (``w`` 0, 1, 2). Samples are
drawn as the rewriter draws them (same temperature, same constraint); a vote
with no usual result keeps the greedy line. Every word problem then costs
``--samples`` sampled lines, where the default samples for about one in eight
(those whose greedy result is negative or fractional).
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
    parser.add_argument("--samples", type=int, default=16, help="lines sampled per word problem (default: 16)")
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
    suffixes = [encode_prompt(rewriter.tokenizer, rewriter.system_prompt, q, rewriter.query_layout)[1] for q in cleaned]
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
    print(f"{'  word-problem lines with an unusual result':<48} {unusual} (the default samples for these)")
    print(f"{'second opinions on unusual results (default)':<48} {100 * default:.1f}%")
    for w in GREEDY_WEIGHTS:
        label = f"a vote on every line, greedy counted {w}x"
        print(f"{label:<48} {100 * accuracy([vote(g, v, expert, w) for g, v in zip(greedy, votes)]):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
