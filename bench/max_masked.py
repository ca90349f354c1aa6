"""What each ``max_masked`` threshold costs and saves, from one pass with the check off.

    python -m lazarus_cot_router.blas python bench/max_masked.py --adapter DIR \
        [--suite mawps-dev --suite clinc150-val] [--queries calib.yaml] [--thresholds 0.999 0.99 0.9]

The rewriter passes a line through when its constraint had to mask more than
``max_masked`` of the model's probability at one step (``RouteResult.masked``), and did
as much on the line's canonical tokens (``RouteResult.masked_canonical``). Routing
every query once with the check off (``max_masked=1``) records that share, and a line is
passed through at a threshold exactly when its share is above it (the second opinions of
the lines kept do not change), so one pass gives every threshold: the right expert lines
it would lose, and the wrong expert lines (a wrong answer, or an expert where chat was
wanted) it would turn into passthroughs. Choose thresholds on the development sets
(``mawps-dev``, ``clinc150-val``, a generated ``calib`` file), never on the suites.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lazarus_cot_router.constrained_choice import judged_share  # noqa: E402
from training.evaluate import PASSTHROUGH_EXPERT, route_rows  # noqa: E402

THRESHOLDS = (0.99999, 0.999, 0.99, 0.95, 0.9, 0.8, 0.5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--adapter", required=True, help="adapter directory from `train`")
    parser.add_argument("--suite", action="append", default=None,
                        help="a suite to route, repeatable (default: mawps-dev and clinc150-val)")
    parser.add_argument("--queries", action="append", default=[], help="a YAML query file to route, repeatable")
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS)
    return parser


def right_expert_line(row: dict) -> bool:
    return row["execution"] and row["want_expert"] != PASSTHROUGH_EXPERT


def trade_off(rows: list[dict], threshold: float, canonical: bool = True) -> tuple[int, int]:
    """``(right lines lost, wrong expert lines passed through)`` at ``threshold``, each line judged
    by the rewriter's rule (``judged_share``), or by its share as decoded alone (``canonical`` False)."""
    above = [r for r in rows if judged_share(r["masked"], r.get("masked_canonical") if canonical else None) > threshold]
    return sum(map(right_expert_line, above)), sum(r["taken"] and not r["execution"] for r in above)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.rewriter import TrainedCoTRewriter
    from training.query_files import load_queries
    from training.suites import load_suite

    sets = {name: load_suite(name) for name in args.suite or ("mawps-dev", "clinc150-val")}
    sets.update({path: load_queries(path) for path in args.queries})
    rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter, max_masked=1.0)
    rewriter.canonical_from = min(args.thresholds)
    every = [row for examples in sets.values() for row in route_rows(rewriter, examples)]
    right = sum(map(right_expert_line, every))
    print(f"{', '.join(sets)}: {right} right expert lines with the check off")
    print("right lines lost / wrong expert lines passed through, judging a line by the share masked as it was"
          " decoded, and by the smaller of that and the share on its canonical tokens (the rewriter's rule)")
    print(f"{'max_masked':>10}  {'as decoded':>14}  {'canonical too':>14}")
    for threshold in args.thresholds:
        decoded = "%d / %d" % trade_off(every, threshold, canonical=False)
        both = "%d / %d" % trade_off(every, threshold)
        print(f"{threshold:>10}  {decoded:>14}  {both:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
