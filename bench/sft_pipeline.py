"""SFT with and without the frozen-blocks pipeline, side by side in one process.

    python -m lazarus_cot_router.blas python bench/sft_pipeline.py [--examples 48] [--rounds 4]

``training.sft.train_sft`` runs the next batch's pass through the frozen blocks
on a second stream while the current step trains (``pipeline=True``, the
default). This runs the same batches both ways, alternating which goes first
in each round, each from the same weights and a fresh optimizer, and reports
the step time (the first step of a run, which compiles, left out), the ratio,
and whether both ways ended at the same loss (they compute the same thing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.config import TrainConfig  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--examples", type=int, default=48, help="training examples per run")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of one run each way")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="SFT batch size")
    parser.add_argument("--num-layers", type=int, default=TrainConfig.num_layers, help="trained blocks")
    return parser


def main(argv=None) -> int:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from lazarus_cot_router.models import load
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import router_system_prompt
    from training.data import generate_split, training_mix
    from training.sft import setup_trainable, train_sft

    args = build_parser().parse_args(argv)
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    examples = generate_split("train", args.examples, 0, experts=experts, mix=training_mix(list(experts.values())))
    config = TrainConfig(examples=args.examples, batch_size=args.batch_size, num_layers=args.num_layers, checkpoint_every=0)
    model, tokenizer = load(args.model)
    setup_trainable(model, config.fine_tune_type, config.num_layers)
    start = [(k, mx.array(v)) for k, v in tree_flatten(model.trainable_parameters())]
    seconds = {False: 0.0, True: 0.0}
    losses: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for pipeline in ((False, True) if round_ % 2 == 0 else (True, False)):
            model.load_weights(start, strict=False)
            steps: list[dict] = []
            train_sft(model, tokenizer, examples, config, system=system, on_step=steps.append, progress=False,
                      pipeline=pipeline)
            seconds[pipeline] += sum(s["seconds"] for s in steps[1:])
            losses[pipeline].append(steps[-1]["loss"])
        print(f"round {round_ + 1}: sequential {seconds[False]:.1f} s, pipelined {seconds[True]:.1f} s", flush=True)
    same = all(abs(a - b) <= 1e-4 * max(1.0, abs(a)) for a, b in zip(losses[False], losses[True]))
    print(f"\n| SFT steps ({args.examples} examples, batch {args.batch_size}, {args.num_layers} trained blocks, "
          f"{args.rounds} rounds) | seconds |\n| --- | --- |")
    print(f"| sequential | {seconds[False]:.1f} |\n| pipelined (default) | {seconds[True]:.1f} |")
    print(f"\nspeed-up {seconds[False] / seconds[True]:.2f}x; same final loss both ways: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
