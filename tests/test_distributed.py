"""Data-parallel SFT: two local processes on the ring backend (``mlx.launch``
with a loopback hostfile) end with identical weights, equal to one process
training on the whole batches.

Run as a script, this file is the worker: ``python test_distributed.py
MODEL_DIR OUT_DIR`` trains a few steps and writes ``rank<R>.safetensors``."""

from __future__ import annotations

import pytest

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

EXAMPLES = [
    ("What is 3 + 4?", "add", "3 + 4"),
    ("256 * 4", "multiply", "256 * 4"),
    ("Time in Tokyo please, answer in french", "time", "Asia/Tokyo"),
    ("hi", "chat", ""),
    ("Calculate 12 * 12, show your work", "multiply", "12 * 12"),
    ("What is 50 - 17?", "subtract", "50 - 17"),
    ("72 / 9", "divide", "72 / 9"),
    ("Tell me a joke", "chat", ""),
]


def train_worker(model_dir: str, out_dir: str) -> None:
    import mlx.core as mx
    import mlx_lm
    from mlx.utils import tree_flatten

    from lazarus_cot_router.experts.base import Example
    from training import sft
    from training.config import TrainConfig

    group = mx.distributed.init()
    model, tokenizer = mlx_lm.load(model_dir)
    sft.setup_trainable(model, "full", 1)
    examples = [Example(q, e, s, None) for q, e, s in EXAMPLES]
    config = TrainConfig(batch_size=4, sft_epochs=2, learning_rate=1e-2, num_layers=1, checkpoint_every=0)
    log = []
    sft.train_sft(model, tokenizer, examples, config, system="Route the query.", on_step=log.append, group=group, progress=False)
    weights = dict(tree_flatten(model.trainable_parameters()))
    mx.save_safetensors(str(Path(out_dir) / f"rank{group.rank()}.safetensors"), weights)
    (Path(out_dir) / f"rank{group.rank()}.json").write_text(json.dumps({"size": group.size(), "losses": [r["loss"] for r in log]}))


@pytest.mark.slow
def test_two_ring_ranks_match_each_other_and_one_process(tiny_model_dir, tmp_path):
    import mlx.core as mx

    from conftest import subprocess_env

    launcher = shutil.which("mlx.launch") or str(Path(sys.executable).with_name("mlx.launch"))
    port = random.randint(20000, 40000)
    host = {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps({"backend": "ring", "hosts": [host, host]}))
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    env = subprocess_env(LAZARUS_COT_ROUTER_NO_REEXEC="1")
    subprocess.run([launcher, "--hostfile", str(hostfile), "--backend", "ring", "--starting-port", str(port), "--python", sys.executable,
                    "--", __file__, str(tiny_model_dir), str(tmp_path / "two")], check=True, env=env, timeout=300, capture_output=True)
    subprocess.run([sys.executable, __file__, str(tiny_model_dir), str(tmp_path / "one")], check=True, env=env, timeout=300, capture_output=True)

    ranks = [mx.load(str(tmp_path / "two" / f"rank{r}.safetensors")) for r in (0, 1)]
    single = mx.load(str(tmp_path / "one" / "rank0.safetensors"))
    assert [json.loads((tmp_path / "two" / f"rank{r}.json").read_text())["size"] for r in (0, 1)] == [2, 2]
    assert ranks[0].keys() == ranks[1].keys() == single.keys() and single
    for name in single:
        assert mx.array_equal(ranks[0][name], ranks[1][name]), name
        assert mx.allclose(ranks[0][name], single[name], atol=1e-4), name
    two = json.loads((tmp_path / "two" / "rank0.json").read_text())["losses"]
    one = json.loads((tmp_path / "one" / "rank0.json").read_text())["losses"]
    assert len(two) == len(one) and all(abs(a - b) < 1e-3 for a, b in zip(two, one))


if __name__ == "__main__":
    train_worker(sys.argv[1], sys.argv[2])
