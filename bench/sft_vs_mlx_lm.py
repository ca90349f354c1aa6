"""One epoch of SFT on the same examples: ``training.sft`` vs ``mlx_lm lora``.

    python -m lazarus_cot_router.blas python bench/sft_vs_mlx_lm.py --examples 500 --batch-size 16

Both run in fresh subprocesses, one after the other, on the same model dir,
the same examples (mlx-lm gets them as chat-format JSONL with
``--mask-prompt``), the same trained blocks (``full``, last ``--num-layers``)
and batch size. mlx-lm runs through its own ``mlx_lm.lora.main`` with only
its ``train`` call timed. Reported: training-loop wall and CPU seconds,
examples/s, sequence tokens/s (prompt + target, what a trainer without prefix
sharing processes) and the mean training loss over the epoch. The machine's
cores may be shared: compare the two rows of one run, and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _examples(args):
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.prompts import router_system_prompt
    from training.data import generate_split

    experts = get_experts()
    return generate_split("train", args.examples, args.seed, experts=experts), router_system_prompt(list(experts.values()))


def write_chat_jsonl(examples, system: str, path: Path) -> None:
    from lazarus_cot_router.prompts import target_text

    with open(path, "w") as fid:
        for ex in examples:
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": ex.query},
                {"role": "assistant", "content": target_text(ex.expert, ex.spec)},
            ]
            fid.write(json.dumps({"messages": messages}) + "\n")


def _clock():
    return time.perf_counter(), time.process_time()


def run_ours(args) -> dict:
    import mlx.core as mx

    from lazarus_cot_router.models import load
    from training.config import TrainConfig
    from training.sft import encode_examples, setup_trainable, train_sft

    examples, system = _examples(args)
    model, tokenizer = load(args.model)
    config = TrainConfig(model=args.model, examples=args.examples, batch_size=args.batch_size, sft_epochs=1, learning_rate=args.learning_rate,
                         fine_tune_type=args.fine_tune_type, num_layers=args.num_layers, seed=args.seed, checkpoint_every=0,
                         operator_weight=1.0)  # mlx_lm weighs every target token alike
    mx.random.seed(args.seed)
    setup_trainable(model, config.fine_tune_type, config.num_layers, config.lora_parameters)
    prefix, rows = encode_examples(tokenizer, examples, system)
    log = []
    wall, cpu = _clock()
    train_sft(model, tokenizer, examples, config, system=system, on_step=log.append, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "trainer": f"training.sft ({args.fine_tune_type})",
        "examples": len(examples),
        "steps": len(log),
        "wall_s": wall,
        "cpu_s": cpu,
        "sequence_tokens": sum(len(prefix) + len(s) + len(t) for s, t in rows),
        "mean_loss": sum(r["loss"] for r in log) / len(log),
        "last_quarter_loss": _mean([r["loss"] for r in log[-max(1, len(log) // 4):]]),
    }
    if args.eval:
        result.update(_heldout_accuracy(model, tokenizer, args))
    return result


def _mean(values):
    return sum(values) / len(values)


def _heldout_accuracy(model, tokenizer, args) -> dict:
    from lazarus_cot_router.plugins import get_experts
    from lazarus_cot_router.rewriter import TrainedCoTRewriter
    from training.data import generate_split
    from training.evaluate import evaluate

    model.eval()
    rewriter = TrainedCoTRewriter(model=args.model, loaded=(model, tokenizer))
    report = evaluate(rewriter, generate_split("heldout", args.eval, args.seed, experts=get_experts()), progress=False)
    return {"heldout_n": report["n"], "heldout_expert_acc": report["expert_accuracy"], "heldout_exec_acc": report["execution_accuracy"]}


def run_mlx_lm(args) -> dict:
    import mlx_lm.lora as lora
    from mlx_lm.tuner.trainer import TrainingCallback

    from lazarus_cot_router.models import resolve_model_dir

    examples, system = _examples(args)
    data = Path(args.workdir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_chat_jsonl(examples, system, data / "train.jsonl")
    iters = len(examples) // args.batch_size
    losses, timing = [], {}

    class Record(TrainingCallback):
        def on_train_loss_report(self, info):
            losses.append(info)

    inner = lora.train

    def timed_train(*a, **kw):
        kw["training_callback"] = Record()
        wall, cpu = _clock()
        inner(*a, **kw)
        timing["wall_s"], timing["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu

    lora.train = timed_train
    sys.argv = ["mlx_lm.lora", "--train", "--model", str(resolve_model_dir(args.model)), "--data", str(data),
                "--fine-tune-type", args.fine_tune_type, "--num-layers", str(args.num_layers), "--batch-size", str(args.batch_size),
                "--iters", str(iters), "--learning-rate", str(args.learning_rate), "--mask-prompt", "--steps-per-report", str(iters),
                "--steps-per-eval", str(10 * iters), "--save-every", str(10 * iters), "--seed", str(args.seed),
                "--adapter-path", str(Path(args.workdir) / "mlx_lm_adapter"), "--max-seq-length", "1024"]
    lora.main()
    from lazarus_cot_router.models import load

    _, tokenizer = load(args.model)
    lengths = [len(tokenizer.apply_chat_template(json.loads(l)["messages"], return_dict=False)) for l in open(data / "train.jsonl")]
    return {
        "trainer": f"mlx_lm lora ({args.fine_tune_type})",
        "examples": iters * args.batch_size,
        "steps": iters,
        **timing,
        "sequence_tokens": int(sum(lengths) * iters * args.batch_size / len(lengths)),
        "mean_loss": losses[-1]["train_loss"] if losses else math.nan,
        "last_quarter_loss": math.nan,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-layers", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--fine-tune-type", default="full", choices=["full", "lora"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", type=int, default=0, help="held-out queries to score after our SFT (0: none)")
    parser.add_argument("--only", choices=["ours", "mlx_lm"], default=None, help="run one trainer")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--worker", choices=["ours", "mlx_lm"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    return parser


def _row(r: dict) -> str:
    return (f"{r['trainer']:<22} {r['examples']:>5} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['examples'] / r['wall_s']:>7.2f} "
            f"{r['sequence_tokens'] / r['wall_s']:>8.0f} {r['mean_loss']:>7.3f}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        result = (run_ours if args.worker == "ours" else run_mlx_lm)(args)
        print("RESULT " + json.dumps(result))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for worker in [w for w in ("ours", "mlx_lm") if args.only in (None, w)]:
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--worker", worker, "--workdir", workdir]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode or not lines:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                return 1
            results.append(json.loads(lines[-1][len("RESULT "):]))
    print(f"{'trainer':<22} {'ex':>5} {'wall_s':>8} {'cpu_s':>8} {'ex/s':>7} {'tok/s':>8} {'loss':>7}")
    for r in results:
        print(_row(r))
    if len(results) == 2:
        ours, theirs = results
        speed = (ours["examples"] / ours["wall_s"]) / (theirs["examples"] / theirs["wall_s"])
        cpu = (theirs["cpu_s"] / theirs["examples"]) / (ours["cpu_s"] / ours["examples"])
        print(f"speedup (examples/s, wall): {speed:.2f}x   (CPU seconds per example): {cpu:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
