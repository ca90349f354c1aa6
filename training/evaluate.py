"""Score a router on labelled queries: format, expert, spec and execution accuracy.

``lazarus-cot-router eval --adapter DIR [--model SPEC] [--queries FILE] [--json]``
runs the trained rewriter on a YAML query file (the schema of the acceptance
file: ``query, expert, spec, answer``; default: the held-out split).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from lazarus_cot_router.experts.base import Example, Expert, ExpertError


def same_answer(got: object, want: object) -> bool:
    """Answers compare as text, or as numbers when both are numeric."""
    if want is None:
        return True
    if got is None:
        return False
    if str(got).strip() == str(want).strip():
        return True
    try:
        return abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(float(want)))
    except (TypeError, ValueError):
        return False


def _canonical(expert: Expert, spec: str) -> str | None:
    try:
        return expert.canonical_spec(spec)
    except ExpertError:
        return None


def score_one(example: Example, expert_name: str | None, spec: str | None, experts: Mapping[str, Expert]) -> dict:
    """Per-query verdicts. ``expert_name is None`` means the line did not parse."""
    row = {"query": example.query, "want_expert": example.expert, "want_spec": example.spec,
           "got_expert": expert_name, "got_spec": spec, "format": expert_name is not None,
           "expert": expert_name == example.expert, "spec": False, "execution": False}
    expert = experts.get(example.expert)
    if not row["expert"] or expert is None:
        return row
    got = _canonical(expert, spec or "")
    row["spec"] = got is not None and got == _canonical(expert, example.spec)
    try:
        row["execution"] = same_answer(expert.answer(spec or ""), example.answer)
    except ExpertError as exc:
        row["execution_error"] = exc.reason
    return row


def summarize(rows: Sequence[dict], tags: Sequence[Iterable[str]] | None = None) -> dict:
    """Accuracies overall and per expert (``per_expert``), and the failures."""

    def rates(subset: Sequence[dict]) -> dict:
        n = len(subset)
        return {"n": n, **{f"{k}_accuracy": (sum(r[k] for r in subset) / n if n else 0.0)
                           for k in ("format", "expert", "spec", "execution")}}

    by_expert = defaultdict(list)
    for r in rows:
        by_expert[r["want_expert"]].append(r)
    report = rates(rows)
    report["per_expert"] = {name: rates(group) for name, group in sorted(by_expert.items())}
    if tags is not None:
        with_instruction = [r for r, t in zip(rows, tags) if any(tag.startswith("instruction") for tag in t)]
        report["extra_instruction"] = rates(with_instruction)
    report["failures"] = [r for r in rows if not r["execution"]]
    return report


def evaluate(rewriter, examples: Sequence[Example], batch_size: int = 32, progress: bool = True) -> dict:
    """Run ``rewriter.route_batch`` over ``examples`` and score the lines."""
    from tqdm import tqdm

    rows = []
    bar = tqdm(total=len(examples), desc="eval", unit="q", disable=not progress, file=sys.stderr)
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        for ex, res in zip(batch, rewriter.route_batch([e.query for e in batch])):
            row = score_one(ex, res.expert, res.spec, rewriter.experts)
            row["raw"] = res.raw
            if res.routes_agree is not None:
                row["hidden_expert"], row["routes_agree"] = res.hidden_expert, res.routes_agree
            rows.append(row)
        bar.update(len(batch))
    bar.close()
    report = summarize(rows, [e.tags for e in examples])
    compared = [r for r in rows if "routes_agree" in r]
    if compared:
        report["hidden_text_agreement"] = sum(r["routes_agree"] for r in compared) / len(compared)
        report["hidden_expert_accuracy"] = sum(r["hidden_expert"] == r["want_expert"] for r in compared) / len(compared)
    return report


def format_report(report: dict) -> str:
    lines = [f"{'':14} {'n':>5} {'format':>7} {'expert':>7} {'spec':>7} {'exec':>7}"]

    def row(name, r):
        return (f"{name:14} {r['n']:5d} {r['format_accuracy']:7.1%} {r['expert_accuracy']:7.1%} "
                f"{r['spec_accuracy']:7.1%} {r['execution_accuracy']:7.1%}")

    lines.append(row("overall", report))
    for name, r in report["per_expert"].items():
        lines.append(row(name, r))
    if report.get("extra_instruction", {}).get("n"):
        lines.append(row("+instruction", report["extra_instruction"]))
    if "hidden_text_agreement" in report:
        lines.append(f"\nhidden-state route: expert accuracy {report['hidden_expert_accuracy']:.1%}, "
                     f"agreement with the parsed line {report['hidden_text_agreement']:.1%}")
    failures = report["failures"]
    if failures:
        lines.append(f"\n{len(failures)} failures (first 20):")
        for f in failures[:20]:
            lines.append(f"  {f['query'][:60]!r}: want {f['want_expert']}: {f['want_spec']}, got {f['raw']!r}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus-cot-router eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", default=None, help="adapter directory from `train` (default: untrained base)")
    parser.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    parser.add_argument("--queries", default=None, help="YAML query file (default: the held-out split)")
    parser.add_argument("-n", "--examples", type=int, default=200, help="held-out examples when no --queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--routing", choices=("text", "hidden"), default="text",
                        help="text: the parsed line chooses the expert; hidden: the calibrated hidden state does")
    parser.add_argument("--calibration", default=None,
                        help="calibration directory (needed by --routing hidden; with text routing, agreement is reported)")
    parser.add_argument("--no-constrain", dest="constrain", action="store_false",
                        help="decode freely instead of copy-constrained (spec words from the query or the expert's grammar)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.models import ModelLoadError
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    from .data import generate_split, load_queries

    try:
        examples = load_queries(args.queries) if args.queries else generate_split("heldout", args.examples, seed=args.seed)
        rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter, routing=args.routing,
                                      calibration=args.calibration, constrain=args.constrain)
    except (OSError, ValueError, ModelLoadError) as exc:
        print(f"lazarus-cot-router eval: {exc}", file=sys.stderr)
        return 2
    report = evaluate(rewriter, examples, batch_size=args.batch_size, progress=not args.json)
    if args.json:
        keys = ("n", "format_accuracy", "expert_accuracy", "spec_accuracy", "execution_accuracy", "per_expert",
                "failures", "hidden_text_agreement", "hidden_expert_accuracy")
        print(json.dumps({k: report[k] for k in keys if k in report}, default=str))
    else:
        print(format_report(report))
    return 0
