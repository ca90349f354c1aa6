"""Faults: training killed with SIGKILL, corrupt or mismatched artifacts,
read-only and full disks.

``tests/test_checkpoint.py`` already covers a SIGKILL after the first SFT
checkpoint (resume equals an uninterrupted run), a checkpoint write that fails
in-process, and corrupt checkpoints. Here: the kill lands in the RL phase,
in the middle of writing a checkpoint, between writing a checkpoint and its
rename, at a random moment from outside, and while the final adapter is
written; then corrupt adapters, mismatched calibrations, read-only output
directories and a full disk. After every fault, every file under its final
name is whole, and whatever was good before is byte-identical.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import yaml

from lazarus_cot_router.atomic import atomic_write
from lazarus_cot_router.hidden_route import CalibrationError, HiddenRouter, IdentityMismatchError, model_identity
from lazarus_cot_router.models import ModelLoadError, load
from lazarus_cot_router.rewriter import TrainedCoTRewriter
from training import checkpoint as ckpt
from training import train as train_module
from training.adapters import ADAPTER_FILE, CONFIG_FILE, adapter_config, save_adapter
from training.sft import setup_trainable

ROOT = Path(__file__).resolve().parents[1]
SFT_STEPS = 4
RL_ITERS = 8
KILL_SEED = 20250115

KILLER = """
import json, os, signal, sys
from pathlib import Path
import mlx.core as mx

plan = json.loads(sys.argv[1])
real_save = mx.save_safetensors
seen = {}

def save(path, arrays, metadata=None):
    tmp = Path(path)
    target = tmp.name.split(".")[1]
    if tmp.parent.name == "sft_adapter":
        target = "sft_adapter/" + target
    seen[target] = seen.get(target, 0) + 1
    real_save(path, arrays, metadata=metadata or {})
    state = json.loads((metadata or {}).get("state", "{}"))
    if target == plan["target"] and seen[target] >= plan.get("nth", 1) and plan.get("when", {}).items() <= state.items():
        if plan["moment"] == "mid-write":
            os.truncate(tmp, tmp.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)

mx.save_safetensors = save
from training.train import main
sys.exit(main(sys.argv[2:]))
"""


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["LAZARUS_COT_ROUTER_NO_REEXEC"] = "1"
    return env


def train_args(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", str(model_dir), "--out", str(out), "--examples", str(4 * SFT_STEPS), "--batch-size", "4",
        "--sft-epochs", "1", "--num-layers", "1", "--learning-rate", "1e-3", "--rl-iters", str(RL_ITERS),
        "--rl-batch-size", "2", "--num-generations", "2", "--max-completion-length", "6", "--eval-examples", "0",
        "--checkpoint-every", "1", "--mawps-examples", "0", "--clinc-examples", "0", "--unsupported-examples", "0", *extra,
    ]


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and ".tmp" in path.name


def assert_every_file_whole(run_dir: Path) -> list[Path]:
    """Every file under its final name parses completely; returns the leftover
    temporary files (a SIGKILL cannot clean those up)."""
    leftovers = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if is_temp(path):
            leftovers.append(path)
        elif path.suffix == ".safetensors":
            ckpt.read_header(path)
            mx.load(str(path))
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif path.suffix == ".yaml":
            assert isinstance(yaml.safe_load(path.read_text()), dict), path
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), path
    return leftovers


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file() and not is_temp(p)
    }


def run_killed_at(plan: dict, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    return subprocess.run([sys.executable, str(script), json.dumps(plan), *args], env=subprocess_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def rl_iterations_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    with contextlib.suppress(OSError, ValueError):
        return [r["iteration"] for r in map(json.loads, path.read_text().splitlines()) if r["phase"] == "rl"]
    return []


def _train_state(run_dir: Path) -> dict:
    """The checkpoint's state without the digest of the training examples it records."""
    state = ckpt.read_state(run_dir)
    assert len(state.pop("examples_digest")) == 64
    return state


def kill_at_random_during_rl(args: list[str], run_dir: Path, rng: random.Random) -> tuple[int | None, float]:
    """Start a resumed run, SIGKILL it at a random moment once it has logged a
    new RL iteration; returns (return code, the delay used)."""
    before = len(rl_iterations_logged(run_dir))
    log = open(run_dir.parent / "random-kill.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "training.train", *args], env=subprocess_env(), cwd=ROOT,
                            stdout=log, stderr=log)
    delay = rng.uniform(0.0, 0.3)
    deadline = time.monotonic() + 240
    try:
        while len(rl_iterations_logged(run_dir)) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "no RL iteration within 240 s"
            time.sleep(0.01)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=60), delay
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_sigkill_in_rl_during_checkpoint_writes_and_adapter_write_then_resume(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = train_args(tiny_model_dir, run_dir)
    resume = [*args, "--resume"]
    rng = random.Random(KILL_SEED)

    # SFT checkpoint 2 written completely to its temporary file, killed before the rename.
    proc = run_killed_at({"target": "checkpoint", "when": {"phase": "sft", "step": 2}, "moment": "before-rename"}, args, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(assert_every_file_whole(run_dir)) == 1
    assert ckpt.read_state(run_dir)["step"] == 1

    # Resumed; SFT finishes, RL's second checkpoint is cut in half mid-write.
    proc = run_killed_at({"target": "checkpoint", "when": {"phase": "rl", "iteration": 2}, "moment": "mid-write"}, resume, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert_every_file_whole(run_dir)
    assert _train_state(run_dir) == {"phase": "rl", "iteration": 1, "seed": 0}
    assert (run_dir / "sft_adapter" / ADAPTER_FILE).is_file()

    # Resumed; killed from outside at a random moment in RL.
    returncode, delay = kill_at_random_during_rl(resume, run_dir, rng)
    assert returncode in (-signal.SIGKILL, 0), (tmp_path / "random-kill.log").read_text()[-2000:]
    assert_every_file_whole(run_dir)
    state = ckpt.read_state(run_dir)
    assert state["phase"] == "rl" and state["iteration"] >= 1

    # Resumed; killed in the middle of writing the final adapter.
    before = digests(run_dir).get(ADAPTER_FILE)
    proc = run_killed_at({"target": "adapters", "nth": 1, "moment": "mid-write"}, resume, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    leftovers = assert_every_file_whole(run_dir)
    assert digests(run_dir).get(ADAPTER_FILE) == before
    assert _train_state(run_dir) == {"phase": "rl", "iteration": RL_ITERS, "seed": 0, "done": True}

    proc = subprocess.run([sys.executable, "-m", "training.train", *resume], env=subprocess_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert assert_every_file_whole(run_dir) == []
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["phase"] == "sft"] == list(range(1, SFT_STEPS + 1))
    assert [r["iteration"] for r in records if r["phase"] == "rl"] == list(range(1, RL_ITERS + 1))
    model, tokenizer = load(str(tiny_model_dir), adapter_path=str(run_dir))
    router = TrainedCoTRewriter(model=str(tiny_model_dir), adapter=str(run_dir), loaded=(model, tokenizer), max_tokens=4)
    assert router.rewrite("What is 3 * 4?").reasoning
    print(f"\nrandom kill {delay:.3f} s after an RL iteration (seed {KILL_SEED}, exit {returncode}); "
          f"temporary files the kills left, removed by the last resume: {[p.name for p in leftovers]}")


# -- corrupt adapters ----------------------------------------------------------------

@pytest.fixture(scope="module")
def good_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    return save_adapter(tmp_path_factory.mktemp("adapter"), model, adapter_config("full", 1, None))


def _damaged(good: Path, tmp_path: Path, damage: str) -> Path:
    bad = tmp_path / damage
    shutil.copytree(good, bad)
    weights, config = bad / ADAPTER_FILE, bad / CONFIG_FILE
    data = weights.read_bytes()
    if damage == "garbage":
        weights.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "truncated-half":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "truncated-last-byte":
        weights.write_bytes(data[:-1])
    elif damage == "header-only":
        weights.write_bytes(data[: 8 + int.from_bytes(data[:8], "little")])
    elif damage == "wrong-shapes":
        arrays = mx.load(str(weights))
        mx.save_safetensors(str(weights), {k: mx.zeros((3, 3)) for k in arrays})
    elif damage == "missing-weights":
        weights.unlink()
    elif damage == "config-garbage":
        config.write_bytes(b"\x00{not json")
    elif damage == "config-missing":
        config.unlink()
    return bad


ADAPTER_DAMAGE = ["garbage", "empty", "truncated-half", "truncated-last-byte", "header-only", "wrong-shapes",
                  "missing-weights", "config-garbage", "config-missing"]


@pytest.mark.parametrize("damage", ADAPTER_DAMAGE)
def test_corrupt_adapter_is_a_clear_load_error(tiny_model_dir, good_adapter, tmp_path, damage):
    bad = _damaged(good_adapter, tmp_path, damage)
    before = digests(bad)
    with pytest.raises(ModelLoadError) as info:
        load(str(tiny_model_dir), adapter_path=str(bad))
    message = str(info.value)
    assert str(bad) in message and "\n" not in message
    with pytest.raises(ModelLoadError):
        TrainedCoTRewriter(model=str(tiny_model_dir), adapter=str(bad))
    assert digests(bad) == before


def test_cli_route_with_corrupt_adapter_exits_2_without_traceback(tiny_model_dir, good_adapter, tmp_path):
    bad = _damaged(good_adapter, tmp_path, "truncated-half")
    proc = subprocess.run(
        [sys.executable, "-m", "commands", "route", "--model", str(tiny_model_dir), "--adapter", str(bad), "hi"],
        env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "cannot load adapter" in proc.stderr and "Traceback" not in proc.stderr


def test_adapter_of_another_base_model_is_refused(tiny_model_dir, good_adapter, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    arrays = mx.load(str(other / "model.safetensors"))
    mx.save_safetensors(str(other / "model.safetensors"), {k: v * 1.5 for k, v in arrays.items()})
    adapter = tmp_path / "adapter"
    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    from training.adapters import base_model_identity

    save_adapter(adapter, model, adapter_config("full", 1, None, base_model_identity(str(tiny_model_dir), tiny_model_dir)))
    load(str(tiny_model_dir), adapter_path=str(adapter))
    with pytest.raises(ModelLoadError, match="trained on"):
        load(str(other), adapter_path=str(adapter))


# -- mismatched calibration ---------------------------------------------------------

def _calibration(directory: Path, identity: dict, hidden_size: int = 64) -> Path:
    experts = ["multiply", "time", "chat"]
    rng = np.random.default_rng(0)
    router = HiddenRouter(
        experts=experts, directions=rng.normal(size=(len(experts), hidden_size)).astype(np.float32),
        scales=np.ones(len(experts)), biases=np.zeros(len(experts)), thresholds=np.full(len(experts), 0.5),
        layer=1, position="prompt_last", identity=identity,
    )
    return router.save(directory)


def test_calibration_of_another_model_or_adapter_is_refused(tiny_model_dir, good_adapter, tmp_path):
    base = model_identity(str(tiny_model_dir))
    with_adapter = model_identity(str(tiny_model_dir), good_adapter)
    calibrated_on_base = _calibration(tmp_path / "base", base)
    calibrated_on_other = _calibration(tmp_path / "other", {**base, "model": "other", "model_hash": "0" * 16})

    assert HiddenRouter.load(calibrated_on_base, model_identity=base).experts == ["multiply", "time", "chat"]
    with pytest.raises(IdentityMismatchError, match="adapter differs"):
        HiddenRouter.load(calibrated_on_base, model_identity=with_adapter)
    with pytest.raises(IdentityMismatchError, match="model weights differ"):
        HiddenRouter.load(calibrated_on_other, model_identity=base)
    loaded = load(str(tiny_model_dir), adapter_path=str(good_adapter))
    with pytest.raises(IdentityMismatchError, match="Rerun `lazarus-cot-router calibrate`"):
        TrainedCoTRewriter(model=str(tiny_model_dir), adapter=str(good_adapter), loaded=loaded,
                           routing="hidden", calibration=str(calibrated_on_base))


@pytest.mark.parametrize("damage", ["directions-garbage", "directions-missing", "yaml-garbage", "wrong-hidden-size"])
def test_damaged_calibration_is_a_clear_error(tiny_model_dir, tmp_path, damage):
    identity = model_identity(str(tiny_model_dir))
    calib = _calibration(tmp_path / "calib", identity, hidden_size=32 if damage == "wrong-hidden-size" else 64)
    if damage == "directions-garbage":
        (calib / "directions.safetensors").write_bytes(b"\xff" * 100)
    elif damage == "directions-missing":
        (calib / "directions.safetensors").unlink()
    elif damage == "yaml-garbage":
        (calib / "calibration.yaml").write_text("{{{: [")
    loaded = load(str(tiny_model_dir))
    with pytest.raises((CalibrationError, ValueError)) as info:
        TrainedCoTRewriter(model=str(tiny_model_dir), loaded=loaded, routing="hidden", calibration=str(calib))
    assert str(calib) in str(info.value)


# -- read-only and full disks -----------------------------------------------------------

@contextlib.contextmanager
def mounted_tmpfs(directory: Path, options: str):
    """A tmpfs mounted at ``directory`` (needs root and CAP_SYS_ADMIN)."""
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@contextlib.contextmanager
def read_only(directory: Path):
    """``directory`` (already filled) made unwritable: chmod for a normal user,
    a read-only tmpfs remount for root, whom permissions do not stop."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)
        try:
            yield directory
        finally:
            os.chmod(directory, 0o755)
        return
    staged = directory.with_name(directory.name + "-staged")
    shutil.move(directory, staged)
    with mounted_tmpfs(directory, "size=16m"):
        for item in staged.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, directory / item.name)
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        yield directory


def _good_run_dir(tiny_model_dir, directory: Path) -> Path:
    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    import mlx.optimizers as optim

    optimizer = optim.Adam(learning_rate=1e-3)
    optimizer.init(model.trainable_parameters())
    ckpt.save_checkpoint(directory, model, optimizer, {"phase": "rl", "iteration": 1, "seed": 0})
    save_adapter(directory, model, adapter_config("full", 1, None))
    atomic_write(directory / "config.yaml", yaml.safe_dump({"model": str(tiny_model_dir), "out": str(directory)}))
    return directory


def test_training_into_a_read_only_directory_fails_clearly(tiny_model_dir, tmp_path, capsys):
    run_dir = _good_run_dir(tiny_model_dir, tmp_path / "run")
    before = digests(run_dir)
    with read_only(run_dir):
        fresh = train_module.main(train_args(tiny_model_dir, run_dir / "sub"))
        resumed = train_module.main(train_args(tiny_model_dir, run_dir, "--resume"))
        err = capsys.readouterr().err
        assert digests(run_dir) == before
    assert (fresh, resumed) == (2, 2)
    assert err.count("lazarus-cot-router train: ") == 2 and "Traceback" not in err
    assert "Read-only file system" in err or "Permission denied" in err


def _fill(directory: Path) -> None:
    with contextlib.suppress(OSError):
        with open(directory / "filler", "wb") as fid:
            while True:
                fid.write(b"\0" * 65536)


def test_full_disk_keeps_the_previous_checkpoint_adapter_and_metrics(tiny_model_dir, tmp_path):
    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    import mlx.optimizers as optim

    optimizer = optim.Adam(learning_rate=1e-3)
    optimizer.init(model.trainable_parameters())
    with mounted_tmpfs(tmp_path / "disk", "size=2m") as disk:
        ckpt.save_checkpoint(disk, model, optimizer, {"phase": "sft", "step": 1})
        save_adapter(disk, model, adapter_config("full", 1, None))
        atomic_write(disk / "metrics.jsonl", '{"phase": "sft", "step": 1}\n')
        before = digests(disk)
        _fill(disk)
        with pytest.raises((OSError, RuntimeError)):
            ckpt.save_checkpoint(disk, model, optimizer, {"phase": "sft", "step": 2})
        with pytest.raises((OSError, RuntimeError)):
            save_adapter(disk, model, adapter_config("full", 1, None))
        with pytest.raises(OSError) as info:
            atomic_write(disk / "metrics.jsonl", "x" * (4 << 20))
        assert info.value.errno == errno.ENOSPC
        after = {k: v for k, v in digests(disk).items() if k != "filler"}
        assert after == before
        assert [p.name for p in disk.iterdir() if is_temp(p)] == []
        assert ckpt.read_state(disk) == {"phase": "sft", "step": 1}


def test_enospc_mid_write_keeps_the_previous_adapter(tiny_model_dir, tmp_path, monkeypatch):
    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    adapter = save_adapter(tmp_path / "adapter", model, adapter_config("full", 1, None))
    before = digests(adapter)

    def disk_fills_halfway(path, arrays, metadata=None):
        with open(path, "wb") as fid:
            fid.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(ckpt.mx, "save_safetensors", disk_fills_halfway)
    with pytest.raises(OSError) as info:
        save_adapter(adapter, model, adapter_config("full", 2, None))
    assert info.value.errno == errno.ENOSPC
    assert digests(adapter) == before
    assert sorted(p.name for p in adapter.iterdir()) == [CONFIG_FILE, ADAPTER_FILE]
    monkeypatch.undo()
    load(str(tiny_model_dir), adapter_path=str(adapter))


def test_training_on_a_full_disk_fails_clearly_and_keeps_the_run(tiny_model_dir, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "disk", "size=4m") as disk:
        run_dir = _good_run_dir(tiny_model_dir, disk / "run")
        before = digests(run_dir)
        _fill(disk)
        code = train_module.main(train_args(tiny_model_dir, run_dir, "--resume"))
        err = capsys.readouterr().err
        assert code == 2, err[-2000:]
        assert "lazarus-cot-router train: " in err and "Traceback" not in err
        assert digests(run_dir) == before
