"""Word-problem operators, teacher-forced: how sure is a router of each step's sign?

    python -m lazarus_cot_router.blas python bench/operator_probe.py ADAPTER [ADAPTER ...] [--split heldout] [-n 200]

Held-out word problems have one to five operators each, so a router that gets
85% of operators right solves only half to two thirds of the longer ones. This feeds each problem's
gold line to the router (one forward, no decoding) and, at every operator,
compares the model's scores of ``+ - * /``: the share where the gold operator
ranks first and its mean probability among the four, overall and by the
operator's position, the one before it and the step's verb (the problem's
``step:`` tags). 574 operator decisions on the default 200 problems: a finer
measure than execution accuracy on the 40 word problems of a held-out eval.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OPERATORS = "+-*/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter directories (from `train`)")
    parser.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    parser.add_argument("--split", default="heldout", choices=("train", "calib", "heldout"))
    parser.add_argument("-n", type=int, default=200, help="word problems (default: 200)")
    parser.add_argument("--seed", type=int, default=7, help="data seed (default: 7, not the training seed)")
    parser.add_argument("--by-verb", action="store_true", help="also list every verb")
    return parser


def operator_ids(tokenizer) -> dict[int, str]:
    """Token id -> operator, for operators the tokenizer writes as one token after a space."""
    ids = {}
    for op in OPERATORS:
        tokens = tokenizer.encode(" " + op, add_special_tokens=False)
        if len(tokens) != 1:
            raise SystemExit(f"' {op}' is {len(tokens)} tokens for this tokenizer; the probe needs one")
        ids[tokens[0]] = op
    return ids


def probe(model, tokenizer, examples, system: str, batch_size: int = 8) -> dict[str, list[float]]:
    """Per group key: ``[count, argmax right, sum of P(gold)]``. Teacher forcing
    as SFT computes it (``training.sft``): the system prompt run once, the
    problems in batches on top of it, the vocabulary head only at target tokens."""
    import mlx.core as mx

    from training.sft import compute_prefix, encode_examples, frozen_forward, make_batch, target_logits

    ops = operator_ids(tokenizer)
    order = list(ops.values())
    columns = mx.array(list(ops))
    everything = len(model.layers)  # no trained blocks to leave out: all run as "frozen"
    prefix_ids, rows = encode_examples(tokenizer, examples, system)
    prefix = compute_prefix(model, prefix_ids, everything)
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for first in range(0, len(rows), batch_size):
        chunk = range(first, min(first + batch_size, len(rows)))
        batch = make_batch([rows[i] for i in chunk])
        logits = target_logits(model, everything, prefix["hidden"], frozen_forward(model, prefix, batch["tokens"]), batch)
        probs = mx.softmax(logits[:, columns].astype(mx.float32), axis=-1).tolist()
        offset = 0
        for i in chunk:
            target = rows[i][1]
            verbs = [t.split(":", 1)[1] for t in examples[i].tags if t.startswith("step:")]
            previous = "start"
            for k, j in enumerate(j for j, t in enumerate(target) if t in ops):
                p, gold = probs[offset + j], ops[target[j]]
                g = order.index(gold)
                right = max(range(len(p)), key=p.__getitem__) == g
                verb = verbs[k] if k < len(verbs) else "?"
                for key in ("all", f"gold {gold}", f"position {k}", f"after {previous}", f"verb {verb}"):
                    s = stats[key]
                    s[0] += 1
                    s[1] += right
                    s[2] += p[g]
                previous = gold
            offset += len(target)
    return dict(stats)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lazarus_cot_router.models import load
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import router_system_prompt
    from training.data import generate_split

    experts = get_experts()
    if "word_problem" not in experts:
        raise SystemExit("no word_problem expert is registered")
    system = router_system_prompt(list(experts.values()))
    examples = generate_split(args.split, args.n, args.seed, experts=experts,
                              mix={k: float(k == "word_problem") for k in experts})
    results = {}
    for adapter in args.adapters:
        model, tokenizer = load(args.model, adapter_path=adapter)
        results[adapter] = probe(model, tokenizer, examples, system)
    keys = sorted({k for r in results.values() for k in r}, key=lambda k: (k.split()[0] != "all", k))
    if not args.by_verb:
        keys = [k for k in keys if not k.startswith("verb ")]
    print(f"{args.n} {args.split} word problems (seed {args.seed}); per adapter: n, gold ranked first, mean P(gold)")
    print(f"{'':14s}" + "".join(f"{a[-28:]:>30s}" for a in args.adapters))
    for key in keys:
        cells = []
        for adapter in args.adapters:
            n, right, p = results[adapter].get(key, [0, 0, 0.0])
            cells.append(f"{n:5d} {right / n:7.1%} {p / n:6.2f}" if n else f"{'-':>19s}")
        print(f"{key:14s}" + "".join(f"{c:>30s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
