"""Score a router on labelled queries: format, expert, spec and execution accuracy.

``lazarus-cot-router eval --adapter DIR [--suite NAME | --queries FILE] [--decoding MODE] [--json]``
runs the trained rewriter on an evaluation suite (``heldout``, ``robustness``,
``svamp``, ``clinc150``, ``mathematics`` or ``all``; see ``training.suites``) or on a YAML query
file (the schema of the acceptance file: ``query, expert, spec, answer``).

A query whose gold expert is ``chat`` counts as routed right when the host
passes it through: the line names ``chat``, or no line could be executed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from typing import Iterable, Mapping, Sequence

from lazarus_cot_router.experts.base import Example, Expert, ExpertError

from .suites import kind_of, kind_rates, load_suite, suite_names

#: The expert whose line hands the query back to the base model.
PASSTHROUGH_EXPERT = "chat"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: How a missed line's numbers compare with the gold line's (:func:`numbers_written`).
MISS_KINDS = ("right", "extra", "fewer", "other")


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


def score_one(example: Example, expert_name: str | None, spec: str | None, experts: Mapping[str, Expert],
              executed: bool = True) -> dict:
    """Per-query verdicts. ``expert_name is None`` means the line did not parse;
    ``executed`` is False when the rewriter passed the query through anyway (the
    spec did not execute, or decoding found no valid line)."""
    taken = expert_name not in (None, PASSTHROUGH_EXPERT) and executed
    row = {"query": example.query, "want_expert": example.expert, "want_spec": example.spec,
           "got_expert": expert_name, "got_spec": spec, "format": expert_name is not None,
           "expert": expert_name == example.expert, "spec": False, "execution": False, "taken": taken}
    if example.expert == PASSTHROUGH_EXPERT:
        row["expert"] = row["spec"] = row["execution"] = not taken
        return row
    expert = experts.get(example.expert)
    if not row["expert"] or expert is None:
        return row
    got = _canonical(expert, spec or "")
    want = _canonical(expert, example.spec)
    row["spec"] = got is not None and got == want
    try:
        row["execution"] = same_answer(expert.answer(spec or ""), example.answer)
    except ExpertError as exc:
        row["execution_error"] = exc.reason
    gold_numbers = _numbers(want or example.spec)
    if not row["execution"] and gold_numbers:
        row["numbers"] = numbers_written(gold_numbers, _numbers(got or spec or ""))
    return row


def _numbers(spec: str) -> Counter:
    return Counter(float(n) for n in _NUMBER.findall(spec))


def numbers_written(gold: Counter, got: Counter) -> str:
    """How a missed line's numbers compare with the gold line's: ``"right"`` (the same
    numbers: it went wrong in operators, order or names), ``"extra"`` (all of them and
    more), ``"fewer"`` (some of them, nothing else) or ``"other"``."""
    if got == gold:
        return "right"
    if not gold - got:
        return "extra"
    if not got - gold:
        return "fewer"
    return "other"


def summarize(rows: Sequence[dict], tags: Sequence[Iterable[str]] | None = None) -> dict:
    """Accuracies overall and per expert (``per_expert``), the failures, and how many of
    the right expert's misses wrote the gold line's numbers, more, fewer or others (``misses``)."""

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
        report.update(kind_rates(list(rows), [kind_of(t) for t in tags]))
    report["failures"] = [r for r in rows if not r["execution"]]
    report["overridden"] = sum(r.get("overridden", False) for r in rows)
    misses = Counter(r["numbers"] for r in report["failures"] if "numbers" in r)
    if misses:
        report["misses"] = {kind: misses[kind] for kind in MISS_KINDS}
    return report


def route_rows(rewriter, examples: Sequence[Example], batch_size: int = 32, progress: bool = True) -> list[dict]:
    """Run ``rewriter.route_batch`` over ``examples``: one scored row per query (:func:`score_one`,
    plus what the model wrote and the share of its probability the constraint masked)."""
    from tqdm import tqdm

    rows = []
    bar = tqdm(total=len(examples), desc="eval", unit="q", disable=not progress, file=sys.stderr)
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        for ex, res in zip(batch, rewriter.route_batch([e.query for e in batch])):
            row = score_one(ex, res.expert, res.spec, rewriter.experts, executed=res.error is None)
            row["raw"], row["masked"], row["overridden"] = res.raw, res.masked, res.overridden
            row["masked_canonical"] = res.masked_canonical
            if res.routes_agree is not None:
                row["hidden_expert"], row["routes_agree"] = res.hidden_expert, res.routes_agree
            rows.append(row)
        bar.update(len(batch))
    bar.close()
    return rows


def evaluate(rewriter, examples: Sequence[Example], batch_size: int = 32, progress: bool = True) -> dict:
    """Route ``examples`` (:func:`route_rows`) and summarize the scores."""
    rows = route_rows(rewriter, examples, batch_size, progress)
    report = summarize(rows, [e.tags for e in examples])
    compared = [r for r in rows if "routes_agree" in r]
    if compared:
        report["hidden_text_agreement"] = sum(r["routes_agree"] for r in compared) / len(compared)
        report["hidden_expert_accuracy"] = sum(r["hidden_expert"] == r["want_expert"] for r in compared) / len(compared)
    return report


def format_report(report: dict, title: str = "") -> str:
    lines = [f"{title:14} {'n':>5} {'format':>7} {'expert':>7} {'spec':>7} {'exec':>7}"]

    def row(name, r):
        return (f"{name:14} {r['n']:5d} {r['format_accuracy']:7.1%} {r['expert_accuracy']:7.1%} "
                f"{r['spec_accuracy']:7.1%} {r['execution_accuracy']:7.1%}")

    lines.append(row("overall", report))
    for name, r in report["per_expert"].items():
        lines.append(row(name, r))
    if report.get("extra_instruction", {}).get("n"):
        lines.append(row("+instruction", report["extra_instruction"]))
    if report.get("kinds"):
        lines.append(f"\n{'kind':22} {'n':>5} {'expert':>7} {'exec':>7} {'taken':>7}")
        for name, r in report["kinds"].items():
            lines.append(f"{name:22} {r['n']:5d} {r['expert_accuracy']:7.1%} {r['execution_accuracy']:7.1%} {r['taken']:7.1%}")
    if "false_positive_rate" in report:
        lines.append(f"an expert took {report['false_positive_rate']:.1%} of the queries that should stay chat (kinds other, oos)")
    if report.get("overridden"):
        lines.append(f"passed through {report['overridden']} queries whose line the constraint overrode (max_masked)")
    if "hidden_text_agreement" in report:
        lines.append(f"\nhidden-state route: expert accuracy {report['hidden_expert_accuracy']:.1%}, "
                     f"agreement with the parsed line {report['hidden_text_agreement']:.1%}")
    if "misses" in report:
        m = report["misses"]
        lines.append(f"\nmisses with the right expert: {m['right']} write the gold line's numbers (wrong operators, "
                     f"order or names), {m['extra']} those and more, {m['fewer']} fewer, {m['other']} other numbers")
    failures = report["failures"]
    if failures:
        lines.append(f"\n{len(failures)} failures (first 20):")
        for f in failures[:20]:
            lines.append(f"  {f['query'][:60]!r}: want {f['want_expert']}: {f['want_spec']}, got {f['raw']!r}")
    return "\n".join(lines)


def format_summary(reports: dict[str, dict]) -> str:
    """One line per suite: the headline figures side by side."""
    lines = [f"{'suite':12} {'n':>5} {'expert':>7} {'exec':>7}  notes"]
    for name, r in reports.items():
        notes = f"expert took {r['false_positive_rate']:.1%} of the should-stay-chat kinds" if "false_positive_rate" in r else ""
        lines.append(f"{name:12} {r['n']:5d} {r['expert_accuracy']:7.1%} {r['execution_accuracy']:7.1%}  {notes}")
    return "\n".join(lines)


JSON_KEYS = ("n", "format_accuracy", "expert_accuracy", "spec_accuracy", "execution_accuracy", "per_expert",
             "extra_instruction", "kinds", "false_positive_rate", "overridden", "misses", "failures", "hidden_text_agreement",
             "hidden_expert_accuracy")


def build_parser() -> argparse.ArgumentParser:
    from lazarus_cot_router.constrain import DECODING_MODES

    from .suites import DEV_SUITES, SUITES

    parser = argparse.ArgumentParser(prog="lazarus-cot-router eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", default=None, help="adapter directory from `train` (default: untrained base)")
    parser.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    parser.add_argument("--suite", default="heldout", choices=[*SUITES, "all", *DEV_SUITES],
                        help="evaluation suite (default: heldout; all: every suite but the dev sets); ignored with --queries")
    parser.add_argument("--queries", default=None, help="YAML query file instead of a suite")
    parser.add_argument("-n", "--examples", type=int, default=200, help="size of the held-out suite (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and of --limit's sample")
    parser.add_argument("--limit", type=int, default=None, help="score a stable random sample of this many queries per suite")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--routing", choices=("text", "hidden"), default="text",
                        help="text: the parsed line chooses the expert; hidden: the calibrated hidden state does")
    parser.add_argument("--calibration", default=None,
                        help="calibration directory (needed by --routing hidden; with text routing, agreement is reported)")
    parser.add_argument("--decoding", choices=DECODING_MODES, default=None,
                        help="free: no constraint; generic: grammar, expert set and copying from the query; "
                             "full: generic plus a word problem's numbers in the query's order (default: the rewriter's default)")
    parser.add_argument("--resample", type=int, default=None, metavar="N",
                        help="lines sampled for a second opinion on a result its expert does not usually give "
                             "(default: the rewriter's, 8; 0: none, out-of-range lines pass through)")
    parser.add_argument("--max-masked", type=float, default=None, metavar="P",
                        help="pass through a line for which the constraint masked more than this share of the "
                             "model's probability at one step (default: the rewriter's; 1: never)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (per suite with --suite all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.models import ModelLoadError
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    from .query_files import load_queries

    try:
        if args.queries:
            suites = {args.queries: load_queries(args.queries)}
        else:
            suites = {name: load_suite(name, args.examples, args.seed, args.limit) for name in suite_names(args.suite)}
        options = {} if args.decoding is None else {"decoding": args.decoding}
        if args.resample is not None:
            options["resample"] = args.resample
        if args.max_masked is not None:
            options["max_masked"] = args.max_masked
        rewriter = TrainedCoTRewriter(model=args.model, adapter=args.adapter, routing=args.routing,
                                      calibration=args.calibration, **options)
    except (OSError, ValueError, ModelLoadError) as exc:
        print(f"lazarus-cot-router eval: {exc}", file=sys.stderr)
        return 2
    reports = {name: evaluate(rewriter, examples, batch_size=args.batch_size)
               for name, examples in suites.items()}
    if args.json:
        trimmed = {name: {k: r[k] for k in JSON_KEYS if k in r} for name, r in reports.items()}
        print(json.dumps(trimmed if len(trimmed) > 1 else next(iter(trimmed.values())), default=str))
        return 0
    for name, report in reports.items():
        print(format_report(report, title=name) + "\n")
    if len(reports) > 1:
        print(format_summary(reports))
    return 0
