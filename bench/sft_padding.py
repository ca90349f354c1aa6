"""Padding of SFT batches against how many batches are sorted by length together.

    python bench/sft_padding.py [--model embedded] [--examples 1000] [--batch-size 8]

On the default training data (seed 0, the training mix): for each sort window
(``training.sft.plan_batches``; the default is ``SORT_WINDOW``), the token
slots a batch of right-padded rows fills, rounded up to ``PAD_TO``, against
the real tokens. Token ids only: no model weights are loaded.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lazarus_cot_router.models import resolve_model_dir  # noqa: E402
from lazarus_cot_router.plugins import get_experts  # noqa: E402
from lazarus_cot_router.prompts import router_system_prompt  # noqa: E402
from training.data import generate_split, training_mix  # noqa: E402
from training.sft import PAD_TO, SORT_WINDOW, encode_examples, plan_batches  # noqa: E402


def padded_slots(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(PAD_TO * math.ceil(max(lengths[i] for i in b) / PAD_TO) * len(b) for b in batches)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC whose tokenizer counts the tokens")
    parser.add_argument("--examples", type=int, default=1000, help="generated training examples")
    parser.add_argument("--batch-size", type=int, default=8, help="SFT batch size")
    return parser


def main(argv=None) -> int:
    from mlx_lm.utils import load_tokenizer

    args = build_parser().parse_args(argv)
    tokenizer = load_tokenizer(resolve_model_dir(args.model))
    experts = get_experts()
    examples = generate_split("train", args.examples, 0, experts=experts, mix=training_mix(list(experts.values())))
    _, rows = encode_examples(tokenizer, examples, router_system_prompt(list(experts.values())))
    lengths = [len(suffix) + len(target) - 1 for suffix, target in rows]
    real = sum(lengths)
    print(f"{args.examples} examples, {real} real tokens (after the shared prefix), batch {args.batch_size}\n")
    print("| batches sorted together | token slots | padding |\n| --- | --- | --- |")
    for window in sorted({1, 8, 32, SORT_WINDOW, math.ceil(args.examples / args.batch_size)}):
        slots = padded_slots(lengths, plan_batches(lengths, 1, args.batch_size, 0, window=window))
        label = f"{window}{' (default)' if window == SORT_WINDOW else ''}"
        print(f"| {label} | {slots} | {slots / real - 1:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
