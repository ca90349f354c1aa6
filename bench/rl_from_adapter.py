"""RL alone, on top of a run's post-SFT adapter, then the held-out evaluation.

    python -m lazarus_cot_router.blas python bench/rl_from_adapter.py runs/mine/sft_adapter runs/mine-rl40 --set rl_iters=40

For RL settings measured without repeating SFT: the run directory that holds
``SFT_ADAPTER`` supplies ``config.yaml`` (so the same data and seed), ``--set
KEY=VALUE`` overrides any of its options (values parsed as YAML). Writes the
adapter, ``metrics.jsonl`` and ``eval.json`` into ``OUT`` and prints the
RL seconds and the held-out accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sft_adapter", type=Path, help="A run's sft_adapter directory.")
    parser.add_argument("out", type=Path, help="Directory for the RL adapter, metrics.jsonl and eval.json.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Override an option of the run's config.yaml (repeatable).")
    parser.add_argument("--prompts", choices=("train", "unseen-mawps"), default="train",
                        help="RL's prompts: the run's training examples (as `train --rl-iters` draws them), or the "
                             "MAWPS + ASDiv-A training problems its SFT did not draw.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import mlx.core as mx

    from lazarus_cot_router.models import load, resolve_model_dir
    from lazarus_cot_router.plugins import get_experts
    from training.adapters import adapter_config, base_model_identity, save_adapter
    from lazarus_cot_router.atomic import atomic_write
    from training.config import TrainConfig
    from training.data import training_examples
    from training.rl import train_rl
    from training.sft import setup_trainable
    from training.train import MetricsLog, evaluate_heldout

    options = yaml.safe_load((args.sft_adapter.parent / "config.yaml").read_text())
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        options[key] = yaml.safe_load(value)
    options["out"] = str(args.out)
    config = TrainConfig(**options)
    args.out.mkdir(parents=True, exist_ok=True)
    mx.random.seed(config.seed)

    model, tokenizer = load(config.model)
    experts = get_experts()
    examples = training_examples(config.examples, config.seed, list(experts.values()),
                                 mawps=config.mawps_examples, clinc=config.clinc_examples,
                                 distractor_share=config.distractor_share, unsupported=config.unsupported_examples,
                                 mathematics=config.mathematics_examples, gsm8k=config.gsm8k_examples)
    if args.prompts == "unseen-mawps":
        import corpora.mawps

        seen = {e.query for e in examples}
        examples = [e for e in corpora.mawps.examples("train") if e.query not in seen]
        print(f"RL prompts: {len(examples)} MAWPS + ASDiv-A training problems SFT did not see", file=sys.stderr)
    setup_trainable(model, config.fine_tune_type, config.num_layers, config.lora_parameters)
    model.load_weights(str(args.sft_adapter / "adapters.safetensors"), strict=False)
    log = MetricsLog(args.out / "metrics.jsonl")
    tic = time.perf_counter()
    train_rl(model, tokenizer, examples, experts, config, on_iteration=lambda m: log.append({**m, "step": m["iteration"]}))
    seconds = time.perf_counter() - tic
    identity = base_model_identity(config.model, resolve_model_dir(config.model))
    save_adapter(args.out, model, adapter_config(config.fine_tune_type, config.num_layers, config.lora_parameters,
                                                 identity, training_config=config.to_dict()))
    report = evaluate_heldout(model, tokenizer, config, args.out, experts)
    atomic_write(args.out / "eval.json", json.dumps(report, indent=2, default=str) + "\n")
    print(f"rl seconds: {seconds:.0f}")
    print({k: report[k] for k in report if k.endswith("accuracy")})
    print({name: v["execution_accuracy"] for name, v in report["per_expert"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
