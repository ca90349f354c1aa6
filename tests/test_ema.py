"""The moving average of the trained weights: its update, SFT ending on it, its place in checkpoints."""

from __future__ import annotations

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from mlx.utils import tree_flatten, tree_map

from training import checkpoint as ckpt
from training import sft, train
from training.config import TrainConfig
from training.ema import WeightEMA
from test_sft import EXAMPLES, SYSTEM, _load


def _flat(model):
    return dict(tree_flatten(model.trainable_parameters()))


def test_the_average_starts_at_the_first_weights_then_moves_by_one_minus_decay(tiny_model_dir):
    model, _ = _load(tiny_model_dir, "full", 1)
    first = _flat(model)
    average = WeightEMA(0.75)
    average.update(model)
    model.update(tree_map(lambda w: w + 1.0, model.trainable_parameters()))
    average.update(model)
    got = dict(tree_flatten(average.weights))
    assert got.keys() == first.keys()
    for name, w in first.items():
        assert mx.allclose(got[name], w + 0.25, atol=1e-6), name

    restored = WeightEMA(0.75)
    restored.load({**average.arrays(), "model.other": mx.zeros(1)})
    assert all(mx.array_equal(dict(tree_flatten(restored.weights))[k], v) for k, v in got.items())
    restored.apply(model)
    assert all(mx.array_equal(_flat(model)[k], v) for k, v in got.items())


@pytest.mark.parametrize("decay", [0, 1, -0.5])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(decay)


def test_train_sft_ends_on_the_moving_average_of_its_steps(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    config = TrainConfig(batch_size=2, sft_epochs=2, learning_rate=1e-2, num_layers=1, checkpoint_every=0)
    steps = []
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, progress=False, average=WeightEMA(0.5),
                  on_step=lambda m: steps.append(_flat(model)))
    assert len(steps) == 6
    want = steps[0]
    for weights in steps[1:]:
        want = {k: 0.5 * want[k] + 0.5 * w for k, w in weights.items()}
    got = _flat(model)
    assert any(not mx.allclose(steps[-1][k], got[k]) for k in got)  # not the last step's weights
    for name, w in want.items():
        assert mx.allclose(got[name], w, atol=1e-5), name


def test_checkpoints_carry_the_average(tiny_model_dir, tmp_path):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    optimizer = optim.Adam(learning_rate=1e-2)
    average = WeightEMA(0.9)
    config = TrainConfig(batch_size=2, sft_epochs=1, num_layers=1, checkpoint_every=0)
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, optimizer=optimizer, progress=False, average=average)
    ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 3}, extra=average.arrays())
    saved = ckpt.load_extra(tmp_path, "ema.")
    assert saved.keys() == average.arrays().keys() and saved
    assert ckpt.load_extra(tmp_path / "none", "ema.") == {}
    with pytest.raises(ValueError, match="prefixes"):
        ckpt.save_checkpoint(tmp_path, model, optimizer, {"step": 3}, extra={"model.x": mx.zeros(1)})
    assert ckpt.read_state(tmp_path) == {"step": 3}


def test_resuming_with_an_average_the_checkpoint_lacks_is_refused(tiny_model_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--model", str(tiny_model_dir), "--out", str(run_dir), "--examples", "8", "--batch-size", "4",
            "--num-layers", "1", "--eval-examples", "0", "--mawps-examples", "0", "--clinc-examples", "0"]
    assert train.main(args) == 0
    model, _ = _load(tiny_model_dir, "full", 1)
    optimizer = optim.Adam(learning_rate=1e-2)
    optimizer.init(model.trainable_parameters())
    ckpt.save_checkpoint(run_dir, model, optimizer, {**ckpt.read_state(run_dir), "step": 1, "done": False})
    assert train.main(args + ["--resume", "--ema-decay", "0.9"]) == 2
    assert "holds no moving average" in capsys.readouterr().err
