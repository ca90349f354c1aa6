"""Supervised fine-tuning of the router on one line per query, fast on a CPU.

Every example is ``prefix + suffix + target``: the prefix (system prompt and
the start of the user turn) is identical for all queries and is most of the
tokens. Only the last ``num_layers`` blocks train, so:

* the frozen blocks' keys/values of the prefix, and the prefix's hidden state
  entering the first trained block, are computed once per run;
* each step runs the prefix through the trained blocks once (batch 1), and the
  batch's right-padded ``suffix + target`` rows on top of it, with the prefix
  keys/values broadcast to the batch (causal attention aligned to the end of
  the keys; padding sits after every real token so no real query sees it);
  with ``prefix_gradient`` False those keys/values are constants to the
  gradient, so the prefix goes through the trained blocks forward only;
* the final norm and the 49k-vocabulary head run only at the positions that
  predict a target token; the loss is the mean cross-entropy over them
  (weighted, with ``operator_weight``: :mod:`training.loss_weights`);
* with more than one epoch, each example's hidden states entering the first
  trained block are kept from its first pass (:class:`FrozenStates`), so later
  epochs skip the frozen blocks.

:func:`prefix_loss` equals the naive per-example full-sequence loss (tested to
1e-4). Gradients are summed per rank and divided by the global token count, so
data-parallel runs match a single-process run on the whole batch.

Measured (embedded SmolLM2-135M, 500 train examples, batch 16, 1 epoch, lr
1e-4, last 6 blocks, float32, OpenBLAS, 2 shared cores; ``bench/sft_vs_mlx_lm.py``):

=====================  ===========  =========  ==========  =====================
trainer                CPU s / ex   mean loss  last 1/4    held-out expert/exec
=====================  ===========  =========  ==========  =====================
this, full (default)   0.33-0.35    0.77       0.25        70% / 40% (n=60)
this, LoRA r8 s20      0.31         1.19       0.48        28% / 23% (n=60)
mlx_lm lora, full      1.65         0.72       --          --
=====================  ===========  =========  ==========  =====================

About 4.8x less CPU per example than ``mlx_lm lora --mask-prompt`` (4.9x in
wall time on 64 examples run back to back). LoRA costs the same here (the
frozen forward dominates) and learns less in one epoch, so "full" is the
default. ``mx.compile`` of the step measured within noise of eager.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Callable, Iterator, Sequence

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_map
from tqdm import tqdm

from lazarus_cot_router import fast_math
from lazarus_cot_router.prompts import encode_prompt, encode_target

from .ema import WeightEMA
from .loss_weights import target_weights

PAD_TO = 8
SORT_WINDOW = 32  # batches sorted by length together: at batch 8, 11% padding instead of 19% (bench/sft_padding.py)


class FixedPrefixCache:
    """A duck-typed KV cache. Empty, it records the keys/values of the tokens
    it sees (the prefix); filled, it prepends them, broadcast to the batch."""

    def __init__(self, keys=None, values=None):
        self.keys, self.values = keys, values
        self.offset = 0 if keys is None else keys.shape[2]

    def update_and_fetch(self, keys, values):
        if self.keys is None:
            self.keys, self.values = keys, values
            return keys, values
        shape = (keys.shape[0], *self.keys.shape[1:])
        return (
            mx.concatenate([mx.broadcast_to(self.keys, shape), keys], axis=2),
            mx.concatenate([mx.broadcast_to(self.values, shape), values], axis=2),
        )


class FrozenStates:
    """Each example's hidden states entering the first trained block, kept from
    its first pass: the frozen blocks never change, so a later epoch takes them
    from here instead of running those blocks again."""

    def __init__(self):
        self._states: dict[int, mx.array] = {}

    def store(self, indices: Sequence[int], lengths: Sequence[int], h: mx.array) -> None:
        for b, (i, n) in enumerate(zip(indices, lengths)):
            self._states[i] = h[b, :n]

    def batch(self, indices: Sequence[int], width: int) -> mx.array | None:
        """The batch's right-padded hidden states, or None unless every example is kept."""
        if any(i not in self._states for i in indices):
            return None
        rows = [self._states[i] for i in indices]
        return mx.stack([mx.pad(r, [(0, width - r.shape[0]), (0, 0)]) for r in rows])


def encode_examples(tokenizer, examples, system: str, layout: str = "as_written") -> tuple[list[int], list[tuple[list[int], list[int]]]]:
    """The shared prefix ids and one ``(suffix_ids, target_ids)`` per example, each query laid
    out as ``layout`` says (:func:`lazarus_cot_router.prompts.lay_out_query`)."""
    prefix = None
    rows = []
    for ex in examples:
        head, suffix = encode_prompt(tokenizer, system, ex.query, layout)
        if prefix is None:
            prefix = head
        elif head != prefix:
            raise ValueError(f"the prompt prefix differs for query {ex.query!r}; the chat template is not prefix-stable")
        rows.append((suffix, encode_target(tokenizer, ex.expert, ex.spec)))
    if prefix is None:
        raise ValueError("no training examples")
    return prefix, rows


def setup_trainable(model: nn.Module, fine_tune_type: str, num_layers: int, lora_parameters: dict | None = None) -> None:
    """Freeze the model, then make the last ``num_layers`` blocks trainable:
    all their weights ("full") or LoRA adapters on their linear layers ("lora")."""
    if not 0 < num_layers <= len(model.layers):
        raise ValueError(f"num_layers={num_layers} but the model has {len(model.layers)} layers")
    model.freeze()
    if fine_tune_type == "full":
        for layer in model.layers[-num_layers:]:
            layer.unfreeze()
    elif fine_tune_type == "lora":
        from mlx_lm.tuner.utils import linear_to_lora_layers

        linear_to_lora_layers(model, num_layers, dict(lora_parameters or {}))
    else:
        raise ValueError(f"unknown fine_tune_type {fine_tune_type!r}")


def sft_schedule(learning_rate: float, total_steps: int, warmup_steps: int, decay: str = "cosine"):
    """Linear warm-up to ``learning_rate`` over ``warmup_steps``, then constant
    or cosine decay to a tenth of it at ``total_steps``."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    after = (optim.cosine_decay(learning_rate, max(total_steps - warmup_steps, 1), learning_rate / 10)
             if decay == "cosine" else (lambda step: mx.array(learning_rate)))
    if warmup_steps == 0:
        return after
    warmup = optim.linear_schedule(learning_rate / warmup_steps, learning_rate, warmup_steps)
    return optim.join_schedules([warmup, after], [warmup_steps])


def sft_optimizer(config, learning_rate: float | Callable | None = None) -> optim.Adam:
    """SFT's Adam at ``learning_rate`` (a rate or a schedule; the config's peak if None), with the
    config's bias correction."""
    return optim.Adam(learning_rate=config.learning_rate if learning_rate is None else learning_rate,
                      bias_correction=config.adam_bias_correction)


def sft_steps(num_examples: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of an SFT run (what :func:`plan_batches` plans)."""
    return math.ceil(num_examples / batch_size) * epochs


def first_trained_layer(model: nn.Module) -> int:
    """Index of the first block with trainable parameters."""
    for i, layer in enumerate(model.layers):
        if any(True for _ in _leaves(layer.trainable_parameters())):
            return i
    raise ValueError("the model has no trainable layers; call setup_trainable first")


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree


def project_vocab(model: nn.Module, h: mx.array) -> mx.array:
    if "lm_head" in model:
        return model.lm_head(h)
    return model.model.embed_tokens.as_linear(h)


def compute_prefix(model: nn.Module, prefix_ids: Sequence[int], start: int) -> dict:
    """The prefix's keys/values in the frozen blocks ``[0, start)`` and its
    hidden state entering block ``start``; constant while those blocks are."""
    h = model.model.embed_tokens(mx.array([list(prefix_ids)]))
    frozen = []
    for layer in model.layers[:start]:
        cache = FixedPrefixCache()
        h = layer(h, "causal", cache=cache)
        frozen.append((cache.keys, cache.values))
    mx.eval(h, frozen)
    return {"hidden": h, "frozen": frozen}


def make_batch(rows: Sequence[tuple[list[int], list[int]]], weights: Sequence[Sequence[float]] | None = None,
               prompt_weight: float = 0.0, prompt_stride: int = 1) -> dict:
    """Right-padded ``suffix + target[:-1]`` inputs and, for every target
    token, the flat index of the position that predicts it and its loss weight
    (``weights``, one list per row; 1 for every token when None). With
    ``prompt_weight`` above 0 the query's own tokens (the suffix after its first;
    every ``prompt_stride``-th of them) follow the targets, each weighing
    ``prompt_weight``; ``norm`` is the sum of the targets' weights alone, so the
    prompt's loss adds to the targets' mean rather than diluting it."""
    inputs = [s + t[:-1] for s, t in rows]
    width = PAD_TO * math.ceil(max(map(len, inputs)) / PAD_TO)
    tokens = np.zeros((len(rows), width), np.int32)
    positions, labels = [], []
    for b, ((suffix, target), seq) in enumerate(zip(rows, inputs)):
        tokens[b, : len(seq)] = seq
        first = b * width + len(suffix) - 1
        positions.extend(range(first, first + len(target)))
        labels.extend(target)
    n = len(labels)
    weights = np.concatenate([np.asarray(w, np.float32) for w in weights]) if weights is not None else np.ones(n, np.float32)
    if weights.shape != (n,):
        raise ValueError(f"{weights.shape[0]} loss weights for {n} target tokens")
    norm = float(weights.sum())
    if prompt_weight > 0:
        for b, (suffix, _) in enumerate(rows):
            positions.extend(range(b * width, b * width + len(suffix) - 1, prompt_stride))
            labels.extend(suffix[1::prompt_stride])
        weights = np.concatenate([weights, np.full(len(labels) - n, prompt_weight, np.float32)])
        n = len(labels)
    padded = PAD_TO * math.ceil(n / PAD_TO)
    weights = np.pad(weights, (0, padded - n))
    positions += [0] * (padded - n)
    labels += [0] * (padded - n)
    return {
        "tokens": mx.array(tokens),
        "positions": mx.array(positions, dtype=mx.int32),
        "labels": mx.array(labels, dtype=mx.int32),
        "weights": mx.array(weights),
        "norm": mx.array(norm, dtype=mx.float32),
        "num_tokens": sum(len(s) + len(t) for s, t in rows),
    }


def frozen_forward(model: nn.Module, prefix: dict, tokens: mx.array) -> mx.array:
    """Hidden states of the batch entering the first trained block."""
    h = model.model.embed_tokens(tokens)
    for layer, (keys, values) in zip(model.layers, prefix["frozen"]):
        h = layer(h, "causal", cache=FixedPrefixCache(keys, values))
    return h


def target_logits(model: nn.Module, start: int, prefix_hidden: mx.array, h: mx.array, batch: dict,
                  prefix_gradient: bool = True) -> mx.array:
    """Logits at ``batch["positions"]`` only: the trained blocks run the shared
    prefix once and the batch on top of its keys and values; the vocabulary
    head runs only where a target token is predicted. Without ``prefix_gradient``
    the prefix's keys and values are constants to the gradient."""
    p = prefix_hidden
    detach = (lambda x: x) if prefix_gradient else mx.stop_gradient
    for layer in model.layers[start:]:
        cache = FixedPrefixCache()
        p = layer(p, "causal", cache=cache)
        h = layer(h, "causal", cache=FixedPrefixCache(detach(cache.keys), detach(cache.values)))
    flat = h.reshape(-1, h.shape[-1])[batch["positions"]]
    return project_vocab(model, model.model.norm(flat))


def prefix_loss(model: nn.Module, start: int, prefix_hidden: mx.array, h: mx.array, batch: dict,
                prefix_gradient: bool = True) -> tuple[mx.array, mx.array]:
    """Weighted sum of the cross-entropy over the batch's target tokens (and its
    prompt tokens, :func:`make_batch`) and the sum of the targets' weights (their
    count when every token weighs 1).

    ``prefix_hidden`` and ``h`` are the hidden states of the shared prefix and
    of the batch entering block ``start``."""
    logits = target_logits(model, start, prefix_hidden, h, batch, prefix_gradient)
    ce = fast_math.cross_entropy(logits, batch["labels"]) * batch["weights"]
    return ce.astype(mx.float32).sum(), batch["norm"]


def iterate_batches(rows, batches: Sequence[Sequence[int]], *, start_step: int = 0, rank: int = 0, size: int = 1,
                    weights: Sequence[Sequence[float]] | None = None, prompt_weight: float = 0.0,
                    prompt_stride: int = 1) -> Iterator[dict]:
    """The batches from ``start_step`` on; each rank gets every ``size``-th
    example of a batch (with its tokens' loss ``weights``, one list per row, and
    ``prompt_weight`` for every ``prompt_stride``-th of the query's tokens:
    :func:`make_batch`)."""
    for batch in batches[start_step:]:
        indices = list(batch)[rank::size]
        yield make_batch([rows[i] for i in indices], None if weights is None else [weights[i] for i in indices],
                         prompt_weight, prompt_stride)


def plan_batches(lengths: Sequence[int], epochs: int, batch_size: int, seed: int, window: int = SORT_WINDOW) -> list[list[int]]:
    """Per epoch, a random permutation cut into batches; within each run of
    ``window`` batches the examples are sorted by length so that a batch pads
    little, and the order of those batches is shuffled again."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        order = rng.permutation(len(lengths))
        span = batch_size * window
        for first in range(0, len(order), span):
            chunk = sorted(order[first : first + span].tolist(), key=lambda i: lengths[i])
            group = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            plan.extend(group[i] for i in rng.permutation(len(group)))
    return plan


def compile_sft_step(model: nn.Module, optimizer: optim.Optimizer, value_and_grad: Callable, compiled_state: list,
                     group) -> Callable:
    """One compiled optimizer step on a batch: ``step(prefix_hidden, h, batch)``
    returns the mean cross-entropy and the number of target tokens, summed over
    the ranks of ``group`` when there are several."""
    size = group.size()

    @partial(mx.compile, inputs=compiled_state, outputs=compiled_state)
    def step(prefix_hidden, h, batch):
        (ce_sum, ntoks), grads = value_and_grad(model, prefix_hidden, mx.stop_gradient(h), batch)
        if size > 1:
            grads = tree_map(lambda g: mx.distributed.all_sum(g, group=group), grads)
            ce_sum = mx.distributed.all_sum(ce_sum, group=group)
            ntoks = mx.distributed.all_sum(ntoks, group=group)
        grads = tree_map(lambda g: g / ntoks, grads)
        optimizer.update(model, grads)
        return ce_sum / ntoks, ntoks

    return step


def train_sft(
    model: nn.Module,
    tokenizer,
    examples,
    config,
    *,
    system: str,
    optimizer: optim.Optimizer | None = None,
    state: dict | None = None,
    loss: Callable = prefix_loss,
    iterate_batches: Callable = iterate_batches,
    on_step: Callable[[dict], None] | None = None,
    save_state: Callable[[dict], None] | None = None,
    group=None,
    progress: bool = True,
    pipeline: bool = True,
    keep_frozen: bool = True,
    average: WeightEMA | None = None,
) -> dict:
    """Train the (already ``setup_trainable``) model for ``config.sft_epochs``.

    ``state`` (from a checkpoint) resumes at its ``step`` with its ``batches``;
    ``save_state(state)`` is called every ``config.checkpoint_every`` steps and
    at the end; ``on_step(metrics)`` after every step, where ``tokens`` counts
    every example's full sequence (prefix + suffix + target, what a trainer
    without prefix sharing processes). With ``pipeline``, the next batch's pass
    through the frozen blocks overlaps this step; with ``keep_frozen`` and more
    than one epoch, later epochs reuse each example's first pass through them
    (:class:`FrozenStates`). ``config.prefix_gradient`` applies to the default
    ``loss`` (:func:`prefix_loss`). ``average`` (a :class:`training.ema.WeightEMA`,
    restored by the caller when resuming) follows the weights after every step, and
    SFT ends on it. Returns the final state."""
    group = group or mx.distributed.init()
    rank, size = group.rank(), group.size()
    if config.batch_size % size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the {size} ranks")
    prefix_ids, rows = encode_examples(tokenizer, examples, system, config.query_layout)
    weights = target_weights(tokenizer, examples, rows, config.operator_weight, config.number_weight)
    state = dict(state or {})
    batches = state.get("batches") or plan_batches([len(s) + len(t) for s, t in rows], config.sft_epochs, config.batch_size, config.seed)
    if size > 1:
        batches = [b for b in batches if len(b) >= size]
    total = len(batches)
    step0 = int(state.get("step", 0))
    start = first_trained_layer(model)
    prefix = compute_prefix(model, prefix_ids, start)
    optimizer = optimizer or sft_optimizer(config)
    optimizer.init(model.trainable_parameters())
    if loss is prefix_loss:
        loss = partial(prefix_loss, prefix_gradient=config.prefix_gradient)
    value_and_grad = nn.value_and_grad(model, lambda m, p, h, b: loss(m, start, p, h, b))
    compiled_state = [model.state, optimizer.state, mx.random.state]
    step = compile_sft_step(model, optimizer, value_and_grad, compiled_state, group)

    # The frozen blocks never change, so the next batch's pass through them runs on a stream of
    # its own while this step trains: the single-threaded parts of one (Adam, softmax) leave a
    # core to the other (bench/sft_pipeline.py).
    frozen_stream = mx.new_stream(mx.default_device())
    kept = FrozenStates() if keep_frozen and config.sft_epochs > 1 else None

    def frozen_hidden(batch, k: int, overlap: bool):
        indices = list(batches[k])[rank::size]
        h = kept.batch(indices, batch["tokens"].shape[1]) if kept is not None else None
        if h is not None:
            return h
        if overlap:
            with mx.stream(frozen_stream):
                h = frozen_forward(model, prefix, batch["tokens"])
            mx.async_eval(h)
        else:
            h = frozen_forward(model, prefix, batch["tokens"])
        if kept is not None:
            kept.store(indices, [len(rows[i][0]) + len(rows[i][1]) - 1 for i in indices], h)
        return h

    model.train()
    bar = tqdm(total=total, initial=step0, desc="sft", unit="step", disable=not progress or rank != 0, dynamic_ncols=True)
    it = step0
    upcoming = iter(iterate_batches(rows, batches, start_step=step0, rank=rank, size=size, weights=weights,
                                    prompt_weight=config.prompt_loss_weight, prompt_stride=config.prompt_loss_stride))
    following = next(upcoming, None)
    following_hidden = frozen_hidden(following, step0, True) if pipeline and following is not None else None
    while following is not None and it < total:
        it += 1
        tic = time.perf_counter()
        batch = following
        h = following_hidden if pipeline else frozen_hidden(batch, it - 1, False)
        batch.pop("num_tokens")
        num_tokens = sum(len(prefix_ids) + len(rows[i][0]) + len(rows[i][1]) for i in batches[it - 1])
        target_tokens = sum(len(rows[i][1]) for i in batches[it - 1])
        lvalue, ntoks = step(prefix["hidden"], h, batch)
        mx.async_eval(compiled_state, lvalue, ntoks)
        following = next(upcoming, None)
        if pipeline and following is not None:
            following_hidden = frozen_hidden(following, it, True)
        mx.eval(compiled_state, lvalue, ntoks)
        if average is not None:
            average.update(model)
        elapsed = time.perf_counter() - tic
        metrics = {
            "phase": "sft",
            "step": it,
            "epoch": math.ceil(it * config.sft_epochs / total),
            "loss": lvalue.item(),
            "target_tokens": target_tokens,
            "tokens": num_tokens,
            "tokens_per_s": num_tokens / elapsed,
            "seconds": elapsed,
        }
        bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}")
        bar.update(1)
        if on_step is not None:
            on_step(metrics)
        if save_state is not None and config.checkpoint_every and it % config.checkpoint_every == 0 and it < total:
            save_state({"phase": "sft", "step": it, "batches": batches})
    bar.close()
    if average is not None:
        average.apply(model)
    final = {"phase": "sft", "step": it, "batches": batches, "done": True}
    if save_state is not None:
        save_state(final)
    return final
