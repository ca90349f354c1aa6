"""Checkpoints: round trip, atomic writes, corrupt files, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mlx.core as mx
import mlx.optimizers as optim
import mlx_lm
import pytest
from mlx.utils import tree_flatten

from conftest import ROOT, subprocess_env
from training import checkpoint as ckpt
from training import sft
from training.config import TrainConfig
from test_sft import EXAMPLES, SYSTEM, _load


def _trained(tiny_model_dir, steps=3):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    optimizer = optim.Adam(learning_rate=1e-2)
    config = TrainConfig(batch_size=2, sft_epochs=1, num_layers=1, checkpoint_every=0)
    sft.train_sft(model, tokenizer, EXAMPLES[: 2 * steps], config, system=SYSTEM, optimizer=optimizer, progress=False)
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_rng(tiny_model_dir, tmp_path):
    model, optimizer = _trained(tiny_model_dir)
    mx.random.seed(123)
    ckpt.save_checkpoint(tmp_path, model, optimizer, {"phase": "sft", "step": 3, "order": [2, 0, 1]})
    want_random = mx.random.uniform(shape=(3,))

    fresh, _ = _load(tiny_model_dir, "full", 1)
    fresh_opt = optim.Adam(learning_rate=1e-2)
    assert ckpt.load_checkpoint(tmp_path, fresh, fresh_opt) == {"phase": "sft", "step": 3, "order": [2, 0, 1]}
    assert mx.array_equal(mx.random.uniform(shape=(3,)), want_random)
    for (k, a), (k2, b) in zip(tree_flatten(model.parameters()), tree_flatten(fresh.parameters())):
        assert k == k2 and mx.array_equal(a, b), k
    want, got = dict(tree_flatten(optimizer.state)), dict(tree_flatten(fresh_opt.state))
    assert want.keys() == got.keys() and int(got["step"].item()) == 3
    assert all(mx.array_equal(want[k], got[k]) for k in want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.safetensors"]


def test_no_checkpoint_is_none(tiny_model_dir, tmp_path):
    model, _ = _load(tiny_model_dir)
    assert ckpt.load_checkpoint(tmp_path, model, None) is None
    assert ckpt.read_state(tmp_path) is None


def test_failed_write_keeps_previous_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    model, optimizer = _trained(tiny_model_dir, steps=1)
    ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 1})

    def broken(path, arrays, metadata=None):
        with open(path, "wb") as fid:
            fid.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.mx, "save_safetensors", broken)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 2})
    assert ckpt.read_state(tmp_path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error(tiny_model_dir, tmp_path, damage):
    model, optimizer = _trained(tiny_model_dir, steps=1)
    path = ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 1})
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\xff" * 64, "empty": b""}[damage])
    fresh, _ = _load(tiny_model_dir)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_checkpoint(tmp_path, fresh, optim.Adam(learning_rate=1e-2))
    assert str(path) in str(info.value) and "start fresh" in str(info.value)


def test_checkpoint_of_another_model_shape_is_refused(tiny_model_dir, tmp_path):
    model, optimizer = _trained(tiny_model_dir, steps=1)
    ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 1})
    other, _ = _load(tiny_model_dir, "full", 2)
    with pytest.raises(ckpt.CheckpointError, match="trainable weights"):
        ckpt.load_checkpoint(tmp_path, other, None)


def _train_cmd(model_dir, out, *extra):
    return [sys.executable, "-m", "commands", "train", "--model", str(model_dir), "--out", str(out),
            "--examples", "32", "--batch-size", "4", "--sft-epochs", "6", "--num-layers", "1",
            "--learning-rate", "1e-3", "--rl-iters", "0", "--eval-examples", "0", "--checkpoint-every", "2",
            "--mawps-examples", "0", "--clinc-examples", "0", "--unsupported-examples", "0", *extra]


def _final_weights(run_dir):
    return mx.load(str(run_dir / "adapters.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--ema-decay", "0.9"), ("--adam-bias-correction", "false")],
                         ids=["last-weights", "moving-average", "uncorrected"])
def test_resume_after_sigkill_matches_uninterrupted_run(tiny_model_dir, tmp_path, options):
    env = subprocess_env(LAZARUS_COT_ROUTER_NO_REEXEC="1")
    subprocess.run(_train_cmd(tiny_model_dir, tmp_path / "full", *options), check=True, env=env, cwd=ROOT, capture_output=True)

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_model_dir, run_dir, *options), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run_dir / "checkpoint.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = ckpt.read_state(run_dir)
    assert state["phase"] == "sft" and not state.get("done") and state["step"] < 48
    assert not (run_dir / "adapters.safetensors").exists()

    fresh = subprocess.run(_train_cmd(tiny_model_dir, run_dir, *options), env=env, cwd=ROOT, capture_output=True, text=True)
    assert fresh.returncode == 2 and "--resume" in fresh.stderr

    subprocess.run(_train_cmd(tiny_model_dir, run_dir, "--resume"), check=True, env=env, cwd=ROOT, capture_output=True)
    want, got = _final_weights(tmp_path / "full"), _final_weights(run_dir)
    assert want.keys() == got.keys()
    for k in want:
        assert mx.allclose(want[k], got[k], atol=1e-5), k
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 49))
    model, _ = mlx_lm.load(str(tiny_model_dir), adapter_path=str(run_dir))
    assert model is not None
