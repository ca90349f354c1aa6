"""SFT on a tiny random llama: the prefix-shared batched loss equals the naive
per-example loss, training overfits, adapters round-trip through mlx-lm."""

from __future__ import annotations

import subprocess
import sys

import mlx.core as mx
import mlx.nn as nn
import mlx_lm
import pytest
from mlx.utils import tree_flatten, tree_map

from conftest import subprocess_env
from lazarus_cot_router.experts.base import Example
from training import sft
from training.adapters import AdapterMismatchError, adapter_config, base_model_identity, check_base_model, save_adapter
from training.config import ConfigError, TrainConfig

SYSTEM = "You are a routing assistant.\nFormat: EXPERT: SPEC ->\nExperts: add, multiply, time, chat"
EXAMPLES = [
    Example("What is 3 + 4?", "add", "3 + 4", "7"),
    Example("256 * 4", "multiply", "256 * 4", "1024"),
    Example("Time in Tokyo please, answer in french", "time", "Asia/Tokyo", "Asia/Tokyo"),
    Example("hi", "chat", "", None),
    Example("Calculate 12 * 12, show your work", "multiply", "12 * 12", "144"),
]
LORA = {"rank": 4, "scale": 10.0, "dropout": 0.0}


def _load(tiny_model_dir, kind="full", num_layers=1):
    model, tokenizer = mlx_lm.load(str(tiny_model_dir))
    mx.random.seed(1)
    sft.setup_trainable(model, kind, num_layers, LORA)
    if kind == "lora":  # lora_b starts at zero; make the adapter matter
        model.update(tree_map(lambda x: mx.random.normal(x.shape) * 0.2, model.trainable_parameters()))
    return model, tokenizer


def naive_loss(model, tokenizer, examples):
    """Mean cross-entropy over target tokens, each example run in full on its own."""
    total, count = mx.array(0.0), 0
    prefix, rows = sft.encode_examples(tokenizer, examples, SYSTEM)
    for suffix, target in rows:
        ids = mx.array([prefix + suffix + target])
        logits = model(ids[:, :-1])[0, -len(target):]
        total = total + nn.losses.cross_entropy(logits, ids[0, -len(target):]).sum()
        count += len(target)
    return total / count


def batch_inputs(model, tokenizer, examples):
    """The first trained block, the shared prefix, the batch and its hidden states entering that block."""
    prefix_ids, rows = sft.encode_examples(tokenizer, examples, SYSTEM)
    start = sft.first_trained_layer(model)
    prefix = sft.compute_prefix(model, prefix_ids, start)
    batch = sft.make_batch(rows)
    batch.pop("num_tokens")
    return start, prefix, batch, sft.frozen_forward(model, prefix, batch["tokens"])


def batched_loss(model, tokenizer, examples, prefix_gradient=True):
    start, prefix, batch, h = batch_inputs(model, tokenizer, examples)
    total, count = sft.prefix_loss(model, start, prefix["hidden"], h, batch, prefix_gradient=prefix_gradient)
    return total / count


@pytest.mark.parametrize("kind,num_layers", [("full", 1), ("full", 2), ("lora", 1)])
def test_prefix_shared_loss_and_grad_equal_naive(tiny_model_dir, kind, num_layers):
    model, tokenizer = _load(tiny_model_dir, kind, num_layers)
    want, want_grad = nn.value_and_grad(model, lambda m: naive_loss(m, tokenizer, EXAMPLES))(model)
    got, got_grad = nn.value_and_grad(model, lambda m: batched_loss(m, tokenizer, EXAMPLES))(model)
    assert abs(want.item() - got.item()) < 1e-4
    want_grad, got_grad = dict(tree_flatten(want_grad)), dict(tree_flatten(got_grad))
    assert want_grad.keys() == got_grad.keys() and want_grad
    for name, g in want_grad.items():
        assert mx.allclose(g, got_grad[name], atol=1e-4, rtol=1e-3), name


def constant_prefix_loss(model, tokenizer, examples):
    """The batched loss with the prefix's keys and values in the trained blocks computed
    beforehand, outside the gradient: what ``prefix_gradient=False`` should differentiate."""
    start, prefix, batch, h = batch_inputs(model, tokenizer, examples)
    p, caches = prefix["hidden"], []
    for layer in model.layers[start:]:
        cache = sft.FixedPrefixCache()
        p = layer(p, "causal", cache=cache)
        caches.append((mx.array(cache.keys), mx.array(cache.values)))
    mx.eval(caches)

    def loss(m):
        x = h
        for layer, (keys, values) in zip(m.layers[start:], caches):
            x = layer(x, "causal", cache=sft.FixedPrefixCache(keys, values))
        flat = x.reshape(-1, x.shape[-1])[batch["positions"]]
        logits = sft.project_vocab(m, m.model.norm(flat))
        ce = nn.losses.cross_entropy(logits, batch["labels"]) * batch["weights"]
        return ce.sum() / batch["weights"].sum()

    return loss


@pytest.mark.parametrize("num_layers", [1, 2])
def test_without_prefix_gradient_the_prefix_keys_and_values_are_constants(tiny_model_dir, num_layers):
    model, tokenizer = _load(tiny_model_dir, "full", num_layers)
    full, full_grad = nn.value_and_grad(model, lambda m: batched_loss(m, tokenizer, EXAMPLES))(model)
    cut, cut_grad = nn.value_and_grad(model, lambda m: batched_loss(m, tokenizer, EXAMPLES, prefix_gradient=False))(model)
    want, want_grad = nn.value_and_grad(model, constant_prefix_loss(model, tokenizer, EXAMPLES))(model)
    assert abs(cut.item() - full.item()) < 1e-5 and abs(cut.item() - want.item()) < 1e-4
    full_grad, cut_grad, want_grad = (dict(tree_flatten(g)) for g in (full_grad, cut_grad, want_grad))
    assert cut_grad.keys() == want_grad.keys() and cut_grad
    for name, g in want_grad.items():
        assert mx.allclose(g, cut_grad[name], atol=1e-4, rtol=1e-3), name
    assert any(not mx.allclose(g, cut_grad[name], atol=1e-4, rtol=1e-3) for name, g in full_grad.items())


def test_train_sft_follows_the_configs_prefix_gradient(tiny_model_dir):
    weights = {}
    for prefix_gradient in (True, False):
        model, tokenizer = _load(tiny_model_dir, "full", 1)
        config = TrainConfig(batch_size=5, sft_epochs=1, learning_rate=3e-3, num_layers=1, checkpoint_every=0,
                             warmup_steps=0, prefix_gradient=prefix_gradient)
        sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, progress=False)
        weights[prefix_gradient] = dict(tree_flatten(model.trainable_parameters()))
    assert any(not mx.allclose(w, weights[False][name]) for name, w in weights[True].items())


def naive_prompt_weighted_loss(model, tokenizer, examples, prompt_weight):
    """Mean cross-entropy over target tokens plus ``prompt_weight`` times the summed
    cross-entropy of each query token after the first, over the targets' count."""
    total, count = mx.array(0.0), 0
    prefix, rows = sft.encode_examples(tokenizer, examples, SYSTEM)
    for suffix, target in rows:
        ids = mx.array([prefix + suffix + target])
        logits = model(ids[:, :-1])[0]
        n, p = len(target), len(prefix)
        total = total + nn.losses.cross_entropy(logits[-n:], ids[0, -n:]).sum()
        query = nn.losses.cross_entropy(logits[p : p + len(suffix) - 1], ids[0, p + 1 : p + len(suffix)])
        total = total + prompt_weight * query.sum()
        count += n
    return total / count


def test_prompt_loss_weight_adds_the_query_tokens_loss(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir, "full", 2)
    prefix_ids, rows = sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)
    start = sft.first_trained_layer(model)
    prefix = sft.compute_prefix(model, prefix_ids, start)
    batch = sft.make_batch(rows, prompt_weight=0.25)
    batch.pop("num_tokens")
    assert batch["norm"].item() == sum(len(t) for _, t in rows)
    h = sft.frozen_forward(model, prefix, batch["tokens"])

    def batched(m):
        total, norm = sft.prefix_loss(m, start, prefix["hidden"], h, batch)
        return total / norm

    want, want_grad = nn.value_and_grad(model, lambda m: naive_prompt_weighted_loss(m, tokenizer, EXAMPLES, 0.25))(model)
    got, got_grad = nn.value_and_grad(model, batched)(model)
    assert abs(want.item() - got.item()) < 1e-4
    assert got.item() > batched_loss(model, tokenizer, EXAMPLES).item()
    want_grad, got_grad = dict(tree_flatten(want_grad)), dict(tree_flatten(got_grad))
    for name, g in want_grad.items():
        assert mx.allclose(g, got_grad[name], atol=1e-4, rtol=1e-3), name


def test_train_sft_passes_the_prompt_loss_weight(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    seen = []

    def recording(*args, **kwargs):
        seen.append((kwargs.get("prompt_weight"), kwargs.get("prompt_stride")))
        yield from sft.iterate_batches(*args, **kwargs)

    config = TrainConfig(batch_size=5, sft_epochs=1, num_layers=1, checkpoint_every=0, prompt_loss_weight=0.1,
                         prompt_loss_stride=3)
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, iterate_batches=recording, progress=False)
    assert seen == [(0.1, 3)]


def test_prompt_loss_stride_takes_every_kth_query_token(tiny_model_dir):
    _, tokenizer = _load(tiny_model_dir)
    _, rows = sft.encode_examples(tokenizer, EXAMPLES[:2], SYSTEM)
    n_target = sum(len(t) for _, t in rows)
    batch = sft.make_batch(rows, prompt_weight=0.5, prompt_stride=3)
    width = batch["tokens"].shape[1]
    positions, labels, weights = (batch[k].tolist() for k in ("positions", "labels", "weights"))
    want = [(b * width + j, suffix[j + 1]) for b, (suffix, _) in enumerate(rows) for j in range(0, len(suffix) - 1, 3)]
    assert list(zip(positions, labels))[n_target : n_target + len(want)] == want
    assert weights[n_target : n_target + len(want)] == [0.5] * len(want) and sum(weights[n_target + len(want):]) == 0
    with pytest.raises(ConfigError, match="prompt_loss_stride"):
        TrainConfig(prompt_loss_weight=0.1, prompt_loss_stride=0)


def test_loss_ignores_prompt_tokens_but_not_targets(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir)
    prefix_ids, rows = sft.encode_examples(tokenizer, EXAMPLES[:2], SYSTEM)
    batch = sft.make_batch(rows)
    n_target = sum(len(t) for _, t in rows)
    assert batch["weights"].sum().item() == n_target
    labels = [l for l, w in zip(batch["labels"].tolist(), batch["weights"].tolist()) if w]
    assert labels == [tok for _, t in rows for tok in t]
    tokens = batch["tokens"].tolist()
    for pos, label, w in zip(batch["positions"].tolist(), batch["labels"].tolist(), batch["weights"].tolist()):
        if w:  # the next input token is the label, except for the final end-of-turn
            row, col = divmod(pos, batch["tokens"].shape[1])
            suffix, target = rows[row]
            if col + 1 < len(suffix) + len(target) - 1:
                assert tokens[row][col + 1] == label


def test_train_sft_lays_out_queries_as_the_config_says(tiny_model_dir):
    story = [Example("Dan had 5 apples. He ate 2 of them. How many are left?", "word_problem", "5 | -2", "3")]
    tokens = {}
    for layout in ("as_written", "question_first", "question_moved"):
        model, tokenizer = _load(tiny_model_dir, "full", 1)
        config = TrainConfig(batch_size=1, sft_epochs=1, num_layers=1, checkpoint_every=0, query_layout=layout)
        log = []
        sft.train_sft(model, tokenizer, story, config, system=SYSTEM, on_step=log.append, progress=False)
        rows = sft.encode_examples(tokenizer, story, SYSTEM, layout)[1]
        assert log[0]["tokens"] == len(sft.encode_examples(tokenizer, story, SYSTEM)[0]) + sum(len(s) + len(t) for s, t in rows)
        tokens[layout] = log[0]["tokens"]
    assert tokens["question_first"] > tokens["as_written"] and tokens["question_moved"] <= tokens["as_written"] + 1


def test_train_sft_overfits_and_reports(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir, "full", 2)
    config = TrainConfig(batch_size=2, sft_epochs=25, learning_rate=3e-3, num_layers=2, checkpoint_every=0)
    log, saved = [], []
    final = sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, on_step=log.append, save_state=saved.append, progress=False)
    assert len(log) == 25 * 3 and final["done"] and saved[-1]["done"]
    first = sum(r["loss"] for r in log[:3]) / 3
    last = sum(r["loss"] for r in log[-3:]) / 3
    assert last < 0.5 * first
    assert naive_loss(model, tokenizer, EXAMPLES).item() < 0.5 * first
    assert all(r["phase"] == "sft" and r["tokens_per_s"] > 0 for r in log)


def test_kept_frozen_states_give_the_loss_of_a_fresh_frozen_pass(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    prefix_ids, rows = sft.encode_examples(tokenizer, EXAMPLES, SYSTEM)
    start = sft.first_trained_layer(model)
    prefix = sft.compute_prefix(model, prefix_ids, start)
    kept = sft.FrozenStates()
    for indices in ([0, 1, 2], [3, 4]):
        batch = sft.make_batch([rows[i] for i in indices])
        h = sft.frozen_forward(model, prefix, batch["tokens"])
        kept.store(indices, [len(rows[i][0]) + len(rows[i][1]) - 1 for i in indices], h)
    regrouped = [4, 0, 2]  # another batch: other neighbours, another padded width
    batch = sft.make_batch([rows[i] for i in regrouped])
    batch.pop("num_tokens")
    assert kept.batch([4, 0, 1, 3], batch["tokens"].shape[1]) is not None
    assert sft.FrozenStates().batch(regrouped, batch["tokens"].shape[1]) is None
    fresh = sft.prefix_loss(model, start, prefix["hidden"], sft.frozen_forward(model, prefix, batch["tokens"]), batch)
    reused = sft.prefix_loss(model, start, prefix["hidden"], kept.batch(regrouped, batch["tokens"].shape[1]), batch)
    assert abs(fresh[0].item() - reused[0].item()) < 1e-4 and fresh[1].item() == reused[1].item()


@pytest.mark.parametrize("pipeline", [True, False])
def test_later_epochs_skip_the_frozen_blocks(tiny_model_dir, monkeypatch, pipeline):
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    passes = []
    real = sft.frozen_forward
    monkeypatch.setattr(sft, "frozen_forward", lambda m, p, tokens: passes.append(tokens.shape[0]) or real(m, p, tokens))
    config = TrainConfig(batch_size=2, sft_epochs=3, learning_rate=1e-3, num_layers=1, checkpoint_every=0)
    log = []
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, on_step=log.append, progress=False, pipeline=pipeline)
    assert len(log) == 3 * 3 and sum(passes) == len(EXAMPLES)


def test_plan_batches_cover_each_epoch_and_sort_within_windows():
    lengths = [5, 1, 4, 2, 3, 9, 7]
    plan = sft.plan_batches(lengths, epochs=3, batch_size=2, seed=0, window=2)
    assert all(len(b) <= 2 for b in plan) and len(plan) == 3 * 4
    per_epoch = [sorted(i for b in plan[e * 4 : (e + 1) * 4] for i in b) for e in range(3)]
    assert per_epoch == [list(range(7))] * 3
    assert plan == sft.plan_batches(lengths, 3, 2, seed=0, window=2) != sft.plan_batches(lengths, 3, 2, seed=1, window=2)
    whole = sft.plan_batches(lengths, 1, 2, seed=0, window=4)
    widths = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in whole)
    assert widths == [0, 1, 1, 2]


def _logits(model, tokenizer):
    ids = mx.array([tokenizer.encode("What is 3 + 4? multiply: 256 * 4 ->")])
    return model(ids)


@pytest.mark.parametrize("kind", ["full", "lora"])
@pytest.mark.slow
def test_adapter_round_trip_through_mlx_lm(tiny_model_dir, tmp_path, kind):
    model, tokenizer = _load(tiny_model_dir, kind, 1)
    config = TrainConfig(batch_size=2, sft_epochs=2, learning_rate=1e-2, num_layers=1, fine_tune_type=kind, lora_parameters=LORA)
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, progress=False)
    model.eval()
    identity = base_model_identity(str(tiny_model_dir), tiny_model_dir)
    save_adapter(tmp_path, model, adapter_config(kind, 1, LORA, identity))
    saved = mx.load(str(tmp_path / "adapters.safetensors"))
    if kind == "full":
        assert saved and all(k.startswith("model.layers.1.") for k in saved)
    else:
        assert saved and all(k.rsplit(".", 1)[-1] in ("lora_a", "lora_b") for k in saved)
    loaded, _ = mlx_lm.load(str(tiny_model_dir), adapter_path=str(tmp_path))
    base, _ = mlx_lm.load(str(tiny_model_dir))
    want = _logits(model, tokenizer)
    assert mx.array_equal(_logits(loaded, tokenizer), want)
    assert not mx.allclose(_logits(base, tokenizer), want)
    check_base_model(tmp_path, tiny_model_dir)

    fused_dir = tmp_path / "fused"
    subprocess.run(
        [sys.executable, "-m", "mlx_lm", "fuse", "--model", str(tiny_model_dir), "--adapter-path", str(tmp_path), "--save-path", str(fused_dir)],
        check=True, capture_output=True, env=subprocess_env(),
    )
    fused, _ = mlx_lm.load(str(fused_dir))
    assert mx.allclose(_logits(fused, tokenizer), want, atol=1e-4)


def test_adapter_refused_on_another_base(tiny_model_dir, tmp_path):
    from conftest import write_tiny_model

    model, _ = _load(tiny_model_dir)
    save_adapter(tmp_path / "a", model, adapter_config("full", 1, None, base_model_identity("tiny", tiny_model_dir)))
    other = write_tiny_model(tmp_path / "other", tiny_model_dir, seed=7)
    with pytest.raises(AdapterMismatchError, match="trained on"):
        check_base_model(tmp_path / "a", other)


def test_sft_schedule_warms_up_then_decays():
    from training.sft import sft_schedule, sft_steps

    assert sft_steps(1000, 8, 1) == 125 and sft_steps(10, 4, 2) == 6
    schedule = sft_schedule(5e-4, 125, 10)
    lrs = [float(schedule(mx.array(step))) for step in range(126)]
    assert lrs[0] == pytest.approx(5e-5)  # a tenth of the peak, not the peak, on the first step
    assert lrs[0] < lrs[5] < lrs[10] == pytest.approx(5e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[125] == pytest.approx(5e-5, rel=1e-3)
    flat = sft_schedule(1e-3, 50, 1, "constant")
    assert float(flat(mx.array(0))) == pytest.approx(1e-3) == float(flat(mx.array(40)))


@pytest.mark.parametrize("bias_correction, first_step", [(False, 0.1 / 0.001 ** 0.5), (True, 1.0)])
def test_adam_bias_correction_sets_the_size_of_the_first_step(tiny_model_dir, bias_correction, first_step):
    # Adam's first step moves each weight by lr * m / sqrt(v): 0.1 g / sqrt(0.001 g^2) without the
    # correction (3.16 lr), g / |g| with it (lr), whatever the gradient's size.
    model, tokenizer = _load(tiny_model_dir, "full", 1)
    before = dict(tree_flatten(model.trainable_parameters()))
    config = TrainConfig(batch_size=len(EXAMPLES), sft_epochs=1, learning_rate=1e-4, num_layers=1,
                         checkpoint_every=0, adam_bias_correction=bias_correction)
    sft.train_sft(model, tokenizer, EXAMPLES, config, system=SYSTEM, progress=False)
    moved = max(mx.abs(w - before[k]).max().item() for k, w in tree_flatten(model.trainable_parameters()))
    assert moved == pytest.approx(1e-4 * first_step, rel=0.02)
