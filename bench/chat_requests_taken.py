"""Which training requests that should stay chat an expert takes, by kind.

    python -m lazarus_cot_router.blas python bench/chat_requests_taken.py --adapter DIR [--unsupported 600]

Routes two sets of training requests for a computation no expert does, both labelled
``chat``: the unsupported generator's draws (``training.generators.unsupported``: chains,
powers, roots, compound percentages, ... ; its ``kind:`` tags) and CLINC150 train's
``calculator`` requests no expert can write (``calculator_other``). It prints, per kind,
how many an expert (not chat) took, and the lines it wrote for them. These are training
data, so their failures may shape the decoder's rules (docs/decoding.md); the evaluation
suites' may not.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.evaluate import route_rows  # noqa: E402
from training.suites import kind_of  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--adapter", required=True, help="adapter directory from `train`")
    parser.add_argument("--unsupported", type=int, default=600, help="unsupported-generator requests to draw (seed 0)")
    parser.add_argument("--show", type=int, default=10, help="taken requests to print per kind")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import corpora.clinc150
    from lazarus_cot_router.rewriter import TrainedCoTRewriter
    from training.generators import unsupported

    sets = {"unsupported": unsupported.examples(args.unsupported, seed=0),
            "clinc150-train": [e for e in corpora.clinc150.examples("train") if kind_of(e.tags) == "calculator_other"]}
    rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter)
    print(f"{'set':<16} {'kind':<18} {'n':>5} {'taken':>6}")
    for name, examples in sets.items():
        rows = route_rows(rewriter, examples)
        kinds = [kind_of(e.tags) or "-" for e in examples]
        counts, taken = Counter(kinds), Counter(k for k, r in zip(kinds, rows) if r["taken"])
        for kind in sorted(counts):
            print(f"{name:<16} {kind:<18} {counts[kind]:>5} {taken[kind]:>6}")
        for kind in sorted(taken):
            shown = [(e.query, r["raw"]) for e, k, r in zip(examples, kinds, rows) if k == kind and r["taken"]]
            for query, raw in shown[:args.show]:
                print(f"    {kind}: {query[:70]!r} -> {raw!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
