"""``lazarus-cot-router train``: SFT, then RL with verified rewards (``--rl-iters``, 0 by
default), then a held-out evaluation; writes an mlx-lm adapter into the run dir.

Run dir (``--out``): ``config.yaml`` (the resolved config),
``adapters.safetensors`` + ``adapter_config.json`` (the final adapter, usable
with ``mlx_lm.load(model_dir, adapter_path=RUN_DIR)``), ``sft_adapter/`` (the
post-SFT adapter, RL's KL reference), ``checkpoint.safetensors`` (for
``--resume``), ``metrics.jsonl`` (one JSON per step), ``eval.json`` and
``training_curves.png``. Every file is written to a temporary name and renamed.

Data-parallel: launch with ``mlx.launch``, e.g. ``mlx.launch --hostfile
hosts.json --python .venv/bin/python -- -m training.train ...`` with a ring
hostfile ``{"backend": "ring", "hosts": [{"ssh": "127.0.0.1", "ips":
["127.0.0.1"]}, ...]}``. SFT batches are split across ranks and gradients
summed over all target tokens (same update as one process on the whole batch);
RL runs the same iterations on every rank; only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from pathlib import Path

import mlx.core as mx
import mlx.optimizers as optim

from .adapters import adapter_config, base_model_identity, save_adapter
from lazarus_cot_router.atomic import atomic_write

from .checkpoint import CheckpointError, checkpoint_path, load_checkpoint, load_extra, read_state, save_checkpoint
from .config import VALUES_BEFORE_RECORDED, ConfigError, TrainConfig, add_config_arguments, resolve_config, save_config
from .ema import PREFIX as EMA_PREFIX
from .ema import WeightEMA
from .sft import setup_trainable, sft_optimizer, sft_schedule, sft_steps, train_sft

SFT_ADAPTER_DIR = "sft_adapter"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazarus-cot-router train",
        description="SFT, then RL with verified rewards when --rl-iters > 0 (default 0); writes an adapter. Options: CLI > --config YAML > defaults.",
    )
    parser.add_argument("-c", "--config", default=None, help="YAML file with any of the options below (keys use underscores).")
    parser.add_argument("--resume", action="store_true", help="Continue the run in --out from its last checkpoint (its config.yaml is the default --config).")
    parser.add_argument("--overwrite", action="store_true", help="Start a new run in --out even if it holds files (without it, a non-empty --out is refused).")
    add_config_arguments(parser)
    return parser


def resolve_run_config(args: argparse.Namespace) -> TrainConfig:
    yaml_path, absent = args.config, None
    if args.resume and yaml_path is None:
        saved = Path(args.out or TrainConfig.out) / "config.yaml"
        if saved.is_file():
            # A run resumes on the recipe it started with, even one older than today's defaults.
            yaml_path, absent = saved, VALUES_BEFORE_RECORDED
    return resolve_config(vars(args), yaml_path, absent)


class MetricsLog:
    """``metrics.jsonl``, rewritten atomically after every record."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled, self.records = path, enabled, []

    def load_until(self, state: dict | None) -> None:
        """Keep the records up to the checkpoint ``state`` (a resumed run
        repeats the steps after it)."""
        if state is None or not self.path.is_file():
            return
        for line in self.path.read_text().splitlines():
            rec = json.loads(line)
            if _before(rec, state):
                self.records.append(rec)

    def append(self, record: dict) -> None:
        self.records.append(record)
        if self.enabled:
            atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in self.records))


def _before(record: dict, state: dict) -> bool:
    if state.get("phase") == "sft" and not state.get("done"):
        return record["phase"] == "sft" and record["step"] <= state["step"]
    if state.get("phase") == "rl":
        return record["phase"] == "sft" or record["step"] <= state.get("iteration", 0)
    return record["phase"] == "sft"


def plot_curves(records: list[dict], path: Path) -> str:
    """The SFT loss curve, and the RL reward curves when RL ran, as a PNG;
    returns a one-line message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft = [r for r in records if r["phase"] == "sft"]
    rl = [r for r in records if r["phase"] == "rl"]
    fig, axes = plt.subplots(1, 2 if rl else 1, figsize=(10 if rl else 5.5, 3.5), squeeze=False)
    axes[0][0].plot([r["step"] for r in sft], [r["loss"] for r in sft])
    axes[0][0].set(title="SFT loss", xlabel="step", ylabel="cross-entropy")
    if rl:
        axes[0][1].plot([r["step"] for r in rl], [r["reward_mean"] for r in rl], label="mean reward")
        axes[0][1].plot([r["step"] for r in rl], [r["fraction_correct"] for r in rl], label="correct")
        axes[0][1].set(title="RL", xlabel="iteration", ylim=(0, 1.05))
        axes[0][1].legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, png.getvalue())
    return f"wrote {path}"


def evaluate_heldout(model, tokenizer, config: TrainConfig, run_dir: Path, experts) -> dict:
    """:func:`training.evaluate.evaluate` of the trained router on
    ``config.eval_examples`` generated held-out queries."""
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    from .data import generate_split
    from .evaluate import evaluate

    examples = generate_split("heldout", config.eval_examples, config.seed, experts=experts)
    rewriter = TrainedCoTRewriter(model=config.model, adapter=str(run_dir), loaded=(model, tokenizer))
    model.eval()
    return evaluate(rewriter, examples)


def _load_rl():
    try:
        from .rl import train_rl
    except ImportError as e:
        raise RuntimeError(f"RL needs training/rl.py (train_rl), which cannot be imported: {e}; use --rl-iters 0 to skip RL") from e
    return train_rl


def _sft_reference(model, run_dir: Path) -> dict:
    """The trainable-parameter tree of the post-SFT adapter (RL's KL reference)."""
    current = model.trainable_parameters()
    model.load_weights(str(run_dir / SFT_ADAPTER_DIR / "adapters.safetensors"), strict=False)
    reference = model.trainable_parameters()
    model.update(current)
    return reference


def run(config: TrainConfig, resume: bool = False, *, overwrite: bool = False, load=None, progress: bool = True) -> dict:
    """Train as ``config`` says; returns ``{"run_dir", "records", "eval"}``. A new run
    (not ``resume``) refuses a non-empty ``config.out`` unless ``overwrite``."""
    from lazarus_cot_router.models import load as load_model
    from lazarus_cot_router.models import resolve_model_dir
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import router_system_prompt

    from .data import examples_digest, training_examples

    group = mx.distributed.init()
    main_rank = group.rank() == 0
    run_dir = Path(config.out)
    state = read_state(run_dir) if resume else None
    if not resume and checkpoint_path(run_dir).exists():
        raise CheckpointError(f"{run_dir} already holds a checkpoint: pass --resume to continue it, or choose another --out")
    if not resume and not overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
        raise CheckpointError(f"{run_dir} is not empty: choose another --out, or pass --overwrite to train into it")
    if main_rank:
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.rglob(".*.tmp*"):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)
        save_config(config, run_dir / "config.yaml")
    mx.random.seed(config.seed)
    random.seed(config.seed)

    model, tokenizer = (load or load_model)(config.model)
    identity = base_model_identity(config.model, resolve_model_dir(config.model))
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    examples = training_examples(config.examples, config.seed, list(experts.values()),
                                 mawps=config.mawps_examples, clinc=config.clinc_examples,
                                 distractor_share=config.distractor_share, unsupported=config.unsupported_examples,
                                 mathematics=config.mathematics_examples,
                                 gsm8k=config.gsm8k_examples, weights=config.expert_weights)
    digest = examples_digest(system, examples)
    if state is not None and state.get("examples_digest", digest) != digest:
        # The batches a checkpoint plans index into the examples: other examples would be
        # trained on from its step on, silently.
        raise CheckpointError(f"{run_dir} began on other training examples than this version of the project "
                              "generates (its generators, corpora or experts changed): finish it with the version "
                              "that began it, or train again into another --out (demo: --fresh)")
    setup_trainable(model, config.fine_tune_type, config.num_layers, config.lora_parameters)
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=main_rank)
    metrics.load_until(state)
    meta = adapter_config(config.fine_tune_type, config.num_layers, config.lora_parameters, identity,
                          query_layout=config.query_layout, training_config=config.to_dict())

    def checkpointer(optimizer, average=None):
        def save(s):
            if main_rank:
                save_checkpoint(run_dir, model, optimizer, {**s, "examples_digest": digest},
                                extra=average.arrays() if average is not None else None)
        return save

    phase = (state or {}).get("phase", "sft")
    if phase == "sft" and not (state or {}).get("done"):
        optimizer = sft_optimizer(config, sft_schedule(
            config.learning_rate, sft_steps(len(examples), config.batch_size, config.sft_epochs),
            config.warmup_steps, config.lr_decay))
        average = WeightEMA(config.ema_decay) if config.ema_decay > 0 else None
        if state is not None:
            load_checkpoint(run_dir, model, optimizer)
            if average is not None:
                average.load(load_extra(run_dir, EMA_PREFIX))
                if average.weights is None and state.get("step"):
                    raise CheckpointError(f"{checkpoint_path(run_dir)} holds no moving average of the weights: "
                                          "the run was started without ema_decay; resume it without one")
        if config.sft_epochs > 0:
            train_sft(model, tokenizer, examples, config, system=system, optimizer=optimizer, state=state,
                      on_step=metrics.append, save_state=checkpointer(optimizer, average), group=group,
                      progress=progress and main_rank, average=average)
        state = {"phase": "sft", "done": True}
    elif phase == "sft":
        load_checkpoint(run_dir, model, None)
    if phase == "sft" and main_rank:
        save_adapter(run_dir / SFT_ADAPTER_DIR, model, meta)

    if config.rl_iters > 0:
        train_rl = _load_rl()
        optimizer = optim.Adam(learning_rate=config.rl_learning_rate)
        reference = None
        if phase == "rl":
            load_checkpoint(run_dir, model, optimizer)
            reference = _sft_reference(model, run_dir)
        train_rl(model, tokenizer, examples, experts, config, optimizer=optimizer, start_state=state,
                 on_iteration=lambda m: metrics.append({**m, "step": m["iteration"]}),
                 save_checkpoint=checkpointer(optimizer), reference=reference, progress=progress and main_rank)

    result = {"run_dir": str(run_dir), "records": metrics.records, "eval": None}
    if not main_rank:
        return result
    save_adapter(run_dir, model, meta)
    print(plot_curves(metrics.records, run_dir / "training_curves.png"), file=sys.stderr)
    if config.eval_examples > 0:
        report = evaluate_heldout(model, tokenizer, config, run_dir, experts)
        atomic_write(run_dir / "eval.json", json.dumps(report, indent=2, default=str) + "\n")
        result["eval"] = report
    return result


def main(argv: list[str] | None = None) -> int:
    from lazarus_cot_router.models import ModelLoadError

    args = build_parser().parse_args(argv)
    try:
        config = resolve_run_config(args)
        result = run(config, resume=args.resume, overwrite=args.overwrite)
    except (ConfigError, CheckpointError, ModelLoadError, RuntimeError, OSError) as e:
        print(f"lazarus-cot-router train: {e}", file=sys.stderr)
        return 2
    if mx.distributed.init().rank() != 0:
        return 0
    report = result["eval"]
    if report is not None:
        from .evaluate import format_report

        print(format_report(report))
    print(f"adapter: {result['run_dir']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
