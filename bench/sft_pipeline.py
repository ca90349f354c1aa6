"""SFT with and without one of its savings, side by side in one process.

    python -m lazarus_cot_router.blas python bench/sft_pipeline.py [--examples 48] [--rounds 4]
    python -m lazarus_cot_router.blas python bench/sft_pipeline.py --compare kept --epochs 2 --rounds 2
    python -m lazarus_cot_router.blas python bench/sft_pipeline.py --compare prefix --batch-size 4
    python -m lazarus_cot_router.blas python bench/sft_pipeline.py --compare prompt --batch-size 4
    python -m lazarus_cot_router.blas python bench/sft_pipeline.py --compare layout --batch-size 4 --mix default

``training.sft.train_sft`` never changes the frozen blocks, and saves on them two ways:

- ``pipeline`` (``--compare pipeline``, the default): the next batch's pass through
  the frozen blocks runs on a second stream while the current step trains;
- ``keep_frozen`` (``--compare kept``, with ``--epochs`` of 2 or more): each
  example's hidden states entering the first trained block are kept from its
  first pass, and later epochs reuse them.

A third saving changes the gradient: ``prefix`` (``--compare prefix``) is
``TrainConfig.prefix_gradient`` False, the shared prefix's keys and values in the
trained blocks taken as constants (forward only), so no step backpropagates
through the prefix; the two ways then end at different losses, both reported.
``prompt`` (``--compare prompt``) is the cost of ``TrainConfig.prompt_loss_weight``
0.1 against 0 (the saving): the query's own tokens in the loss, each a projection
onto the vocabulary. ``layout`` (``--compare layout``) is the cost of
``TrainConfig.query_layout`` ``question_first`` against ``as_written``: a query of two
sentences or more read with its last sentence twice. Only such queries pay, so it is
measured on the default mix of generated and public examples (``--mix default``).

This runs the same batches with the saving off and on, alternating which goes
first in each round, each from the same weights and a fresh optimizer, and
reports the step time of the first epoch and of the later ones (the first step
of a run, which compiles, left out), the ratio, and whether both ways ended at
the same loss (they compute the same thing).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.config import TrainConfig  # noqa: E402

SAVINGS = {"pipeline": "pipeline", "kept": "keep_frozen"}  # train_sft's keyword arguments
#: TrainConfig fields and their values without the saving and with it.
CONFIG_SAVINGS = {"prefix": ("prefix_gradient", True, False), "prompt": ("prompt_loss_weight", 0.1, 0.0),
                  "layout": ("query_layout", "question_first", "as_written")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model SPEC")
    parser.add_argument("--compare", choices=sorted({**SAVINGS, **CONFIG_SAVINGS}), default="pipeline", help="the saving to turn off and on")
    parser.add_argument("--examples", type=int, default=48, help="training examples per run")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (--compare kept needs 2 or more)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of one run each way")
    parser.add_argument("--mix", choices=("generated", "default"), default="generated",
                        help="examples: generated ones only, or the default recipe's mix of generated, MAWPS + ASDiv-A "
                             "and CLINC150 examples in its proportions")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="SFT batch size")
    parser.add_argument("--num-layers", type=int, default=TrainConfig.num_layers, help="trained blocks")
    return parser


def main(argv=None) -> int:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from lazarus_cot_router.models import load
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import router_system_prompt
    from training.data import generate_split, training_examples, training_mix
    from training.sft import setup_trainable, train_sft

    args = build_parser().parse_args(argv)
    if args.compare == "kept" and args.epochs < 2:
        raise SystemExit("--compare kept needs --epochs 2 or more: the first epoch is the same both ways")
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    if args.mix == "default":
        d = TrainConfig()
        generated, mawps, clinc = (round(args.examples * n / (d.examples + d.mawps_examples + d.clinc_examples))
                                   for n in (d.examples, d.mawps_examples, d.clinc_examples))
        examples = training_examples(generated, 0, list(experts.values()), mawps=mawps, clinc=clinc)
    else:
        examples = generate_split("train", args.examples, 0, experts=experts, mix=training_mix(list(experts.values())))
    config = TrainConfig(examples=args.examples, batch_size=args.batch_size, num_layers=args.num_layers,
                         sft_epochs=args.epochs, checkpoint_every=0)
    model, tokenizer = load(args.model)
    setup_trainable(model, config.fine_tune_type, config.num_layers)
    start = [(k, mx.array(v)) for k, v in tree_flatten(model.trainable_parameters())]
    seconds = {on: {"first": 0.0, "later": 0.0} for on in (False, True)}
    losses: dict[bool, list[float]] = {False: [], True: []}
    tokens = {False: 0, True: 0}  # of one run's first epoch, prefix included
    for round_ in range(args.rounds):
        for on in ((False, True) if round_ % 2 == 0 else (True, False)):
            model.load_weights(start, strict=False)
            steps: list[dict] = []
            if args.compare in CONFIG_SAVINGS:
                field, without, with_saving = CONFIG_SAVINGS[args.compare]
                run_config, saving = replace(config, **{field: with_saving if on else without}), {}
            else:
                run_config, saving = config, {SAVINGS[args.compare]: on}
            train_sft(model, tokenizer, examples, run_config, system=system, on_step=steps.append, progress=False,
                      **saving)
            for step in steps[1:]:
                seconds[on]["first" if step["epoch"] == 1 else "later"] += step["seconds"]
            tokens[on] = sum(step["tokens"] for step in steps if step["epoch"] == 1)
            losses[on].append(steps[-1]["loss"])
        print(f"round {round_ + 1}: {args.compare} off {sum(seconds[False].values()):.1f} s, "
              f"on {sum(seconds[True].values()):.1f} s", flush=True)
    same = all(abs(a - b) <= 1e-4 * max(1.0, abs(a)) for a, b in zip(losses[False], losses[True]))
    print(f"\n| SFT steps ({args.examples} examples, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.num_layers} trained blocks, {args.rounds} rounds) | epoch 1 s | later epochs s |\n| --- | --- | --- |")
    if args.compare in CONFIG_SAVINGS:
        field, without, with_saving = CONFIG_SAVINGS[args.compare]
        default_on = getattr(TrainConfig, field) == with_saving
        label = {on: f"{field} {with_saving if on else without}" for on in (False, True)}
    else:
        default_on, label = True, {on: f"{args.compare} {'on' if on else 'off'}" for on in (False, True)}
    for on in (False, True):
        print(f"| {label[on]}{' (default)' if on == default_on else ''} | {seconds[on]['first']:.1f} | {seconds[on]['later']:.1f} |")
    total = {on: sum(seconds[on].values()) for on in (False, True)}
    later = f"later epochs {seconds[False]['later'] / seconds[True]['later']:.2f}x, " if args.epochs > 1 else ""
    mean_loss = {on: sum(losses[on]) / len(losses[on]) for on in (False, True)}
    print(f"\nspeed-up: {later}the whole run {total[False] / total[True]:.2f}x; same final loss both ways: {same}"
          f" (mean final loss: {label[False]} {mean_loss[False]:.4f}, {label[True]} {mean_loss[True]:.4f})")
    if tokens[False] != tokens[True]:
        print(f"tokens of an epoch (prefix included): {label[False]} {tokens[False]}, {label[True]} {tokens[True]} "
              f"({tokens[False] / tokens[True]:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
