"""Second opinions on the MAWPS dev split: none, on negative word-problem results, on fractional ones too.

    python -m lazarus_cot_router.blas python bench/second_opinions.py --adapter DIR [--resample 8]

The rewriter resamples a line whose result its expert does not usually give
(``Expert.usual_result``). This scores the same adapter three ways on the MAWPS dev
split (n=267, a development set: rules may be chosen on it): greedy lines only
(``resample=0``), second opinions on negative results only (``word_problem`` without
``whole_results``), and the default (negative or fractional). One model load serves
all three; sampling draws from MLX's global random state, so reruns move by a line or two.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--adapter", required=True, help="adapter directory from `train`")
    parser.add_argument("--resample", type=int, default=8, help="lines sampled for a second opinion (default: 8)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.rewriter import TrainedCoTRewriter
    from training.evaluate import evaluate
    from training.suites import load_suite

    examples = load_suite("mawps-dev")
    rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter)
    default_expert = rewriter.experts["word_problem"]
    negative_only = copy.copy(default_expert)
    negative_only.whole_results = False
    ways = [("greedy (resample 0)", 0, default_expert),
            ("second opinions on negative results", args.resample, negative_only),
            ("... and on fractional ones (default)", args.resample, default_expert)]
    print(f"MAWPS dev, n={len(examples)}, execution accuracy")
    for label, resample, expert in ways:
        rewriter.resample, rewriter.experts["word_problem"] = resample, expert
        report = evaluate(rewriter, examples)
        print(f"{label:<40} {100 * report['execution_accuracy']:.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
