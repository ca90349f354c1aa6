"""Batched sampling of routing lines for RL, with a shared-prefix KV cache.

Every RL prompt is ``prefix + suffix``: the prefix (system message and the start
of the user turn) is the same for all of them, so it is prefilled once, copied
into a :class:`~mlx_lm.models.cache.BatchKVCache` row per prompt, the suffixes
are prefilled together (right-padded, then rolled to left padding), and the rows
are repeated ``num_generations`` times for decoding. Finished rows leave the
batch. Decoding stops right after ``->``, at a stop token (end of turn), or after
``max_tokens``; the stop token is kept in ``tokens`` so a policy-gradient step
scores exactly what was sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import mlx.core as mx
import numpy as np
from mlx_lm.models.base import create_attention_mask
from mlx_lm.models.cache import BatchKVCache, KVCache, make_prompt_cache

from lazarus_cot_router import fast_math
from lazarus_cot_router.grammar import ARROW


@dataclass
class Completion:
    """One sampled completion. ``tokens`` includes the stop token; ``text``
    leaves a stop token out. ``logprobs`` are the policy's (temperature 1)
    log-probabilities of ``tokens``."""

    tokens: list[int]
    text: str
    finish: str  # "arrow" | "eot" | "length"
    logprobs: list[float] = field(default_factory=list)
    hidden: mx.array | None = None


def split_head(model):
    """``(body, head)`` with ``head(body(inputs, cache)) == model(inputs, cache)``,
    so logits are computed only where needed. Models without a recognizable
    output head get ``(model, identity)``."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(model, "lm_head"):
        return inner, model.lm_head
    embed = getattr(inner, "embed_tokens", None)
    args = getattr(model, "args", None)
    if embed is not None and getattr(args, "tie_word_embeddings", False):
        return inner, embed.as_linear
    return model, lambda h: h


def prefill_prefix(model, prefix_ids: Sequence[int]) -> list[KVCache]:
    """Run ``prefix_ids`` through the model (batch 1) and return its KV cache."""
    cache = make_prompt_cache(model)
    for layer in cache:
        if not isinstance(layer, KVCache):
            raise TypeError(f"shared-prefix sampling needs KVCache layers, got {type(layer).__name__}")
    if prefix_ids:
        body, _ = split_head(model)
        body(mx.array(list(prefix_ids))[None], cache=cache)
        mx.eval([c.state for c in cache])
    return cache


def batch_prefix_cache(prefix_cache: list[KVCache], batch_size: int) -> list[BatchKVCache]:
    """One BatchKVCache per layer whose every row holds a copy of the prefix."""
    out = []
    for layer in prefix_cache:
        cache = BatchKVCache([0] * batch_size)
        if layer.offset:
            keys, values = layer.keys[..., : layer.offset, :], layer.values[..., : layer.offset, :]
            cache.keys = mx.repeat(keys, batch_size, axis=0)
            cache.values = mx.repeat(values, batch_size, axis=0)
            cache.offset = mx.full((batch_size,), layer.offset, dtype=mx.int32)
            cache._idx = layer.offset
        out.append(cache)
    return out


def pad_right(rows: Sequence[Sequence[int]], pad: int = 0) -> tuple[mx.array, list[int]]:
    lengths = [len(r) for r in rows]
    width = max(lengths)
    return mx.array([list(r) + [pad] * (width - len(r)) for r in rows]), lengths


def sample_token(logits: mx.array, temperature: float, key: mx.array | None) -> mx.array:
    if temperature <= 0:
        return mx.argmax(logits, axis=-1)
    return mx.random.categorical(logits * (1.0 / temperature), key=key)


class TokenCheck(Protocol):
    """What a completion may go on with (:class:`lazarus_cot_router.constrained_choice.ConstrainedChoice` is one)."""

    def valid(self, generated: list[int], token: int) -> bool: ...

    def grammar_tokens(self, generated: list[int]) -> list[int]: ...

    def relax(self) -> bool: ...


#: Draws rejected before looking among the ``FALLBACK_TOP_K`` likeliest tokens at once.
MAX_REJECTIONS = 8
FALLBACK_TOP_K = 64


def sample_valid_tokens(logits: mx.array, temperature: float, rng: np.random.Generator,
                        rows: Sequence[tuple[TokenCheck, list[int]]]) -> mx.array:
    """One token per row of ``logits`` from the temperature-scaled softmax
    restricted to the tokens its check accepts: draw, and on a rejected token
    zero it and draw again (exactly the restricted distribution, at the cost of
    one check per draw); after ``MAX_REJECTIONS`` rejections, draw among the
    accepted ones of the ``FALLBACK_TOP_K`` likeliest, and failing those,
    among the tokens the check's grammar offers. ``temperature`` 0 takes the
    likeliest accepted token. A row nothing is accepted for gets its likeliest token."""
    scores = np.array(logits.astype(mx.float32), dtype=np.float64)
    chosen = []
    for z, (check, generated) in zip(scores, rows):
        p = np.exp((z - z.max()) / max(temperature, 1e-6))
        p /= p.sum()
        token = None if temperature <= 0 else _draw_accepted(p.copy(), check, generated, rng)
        if token is None:
            accepted = _accepted_fallback(p, check, generated)
            if not accepted:
                token = int(np.argmax(p))
            elif temperature <= 0:
                token = max(accepted, key=lambda t: p[t])
            else:
                weights = p[accepted] + 1e-12
                token = int(rng.choice(accepted, p=weights / weights.sum()))
        chosen.append(token)
    return mx.array(chosen, dtype=mx.uint32)


def _draw_accepted(p: np.ndarray, check: TokenCheck, generated: list[int], rng: np.random.Generator) -> int | None:
    """Rejection sampling from ``p`` (zeroed in place where rejected); ``None``
    after ``MAX_REJECTIONS`` rejections."""
    for _ in range(MAX_REJECTIONS):
        if p.sum() <= 0:
            return None
        token = int(rng.choice(len(p), p=p / p.sum()))
        if check.valid(generated, token):
            return token
        p[token] = 0.0
    return None


def _accepted_fallback(p: np.ndarray, check: TokenCheck, generated: list[int]) -> list[int]:
    """The accepted tokens among the likeliest, else the ones the grammar
    offers, else those it offers once the check relaxes its rules."""
    top = np.argpartition(-p, min(FALLBACK_TOP_K, len(p) - 1))[:FALLBACK_TOP_K]
    return ([int(t) for t in top if check.valid(generated, int(t))] or check.grammar_tokens(generated)
            or (check.relax() and check.grammar_tokens(generated)) or [])


def ends_with_arrow(text: str) -> bool:
    return text.rstrip().endswith(ARROW)


def layer_forward(model, capture_layer: int | None):
    """``f(inputs, cache) -> (hidden before the head, hidden entering block
    capture_layer or None)`` for a llama-style model (``model.model`` with
    ``embed_tokens``, ``layers``, ``norm``)."""
    body, _ = split_head(model)
    if capture_layer is None:
        return lambda inputs, cache: (body(inputs, cache=cache), None)
    inner = model.model

    def forward(inputs, cache):
        h = inner.embed_tokens(inputs)
        mask = create_attention_mask(h, cache[0])
        captured = None
        for i, (layer, c) in enumerate(zip(inner.layers, cache)):
            if i == capture_layer:
                captured = h
            h = layer(h, mask, cache=c)
        return inner.norm(h), captured

    return forward


def sample_completions(
    model,
    tokenizer,
    prefix_cache: list[KVCache],
    suffixes: Sequence[Sequence[int]],
    *,
    num_generations: int = 1,
    temperature: float = 1.0,
    max_tokens: int = 24,
    stop_token_ids: Sequence[int] = (),
    seed: int = 0,
    capture_layer: int | None = None,
    token_checks: Sequence[TokenCheck] | None = None,
) -> list[list[Completion]]:
    """Sample ``num_generations`` completions of ``prefix + suffix`` for every
    suffix, where ``prefix_cache`` holds the prefix (:func:`prefill_prefix`;
    it is copied, never written). Returns one list of completions per suffix.
    ``temperature`` 0 is greedy. The same seed gives the same samples.

    With ``capture_layer``, each completion's ``hidden`` holds the hidden
    states entering that block at the inputs ``suffix + tokens[:-1]``, so a
    training forward can start there instead of re-running the blocks below.

    With ``token_checks`` (one per completion, ``num_generations`` per suffix
    in order), every token is drawn among those its check accepts (:func:`sample_valid_tokens`); ``logprobs``
    stay the unrestricted policy's."""
    if not suffixes:
        return []
    if any(len(s) == 0 for s in suffixes):
        raise ValueError("every prompt needs at least one token after the prefix")
    P, G = len(suffixes), num_generations
    stop_ids = set(stop_token_ids)
    key = mx.random.key(seed)
    rng = np.random.default_rng(seed)
    forward = layer_forward(model, capture_layer)
    _, head = split_head(model)

    cache = batch_prefix_cache(prefix_cache, P)
    tokens, lengths = pad_right(suffixes)
    right = [tokens.shape[1] - n for n in lengths]
    for c in cache:
        c.prepare(right_padding=right)
    hidden, captured = forward(tokens, cache)
    last = hidden[mx.arange(P), mx.array(lengths) - 1]
    logits = head(last).astype(mx.float32)
    for c in cache:
        c.finalize()
    rows = mx.repeat(mx.arange(P), G)
    for c in cache:
        c.filter(rows)
    logits = logits[rows]

    B = P * G
    out = [Completion([], "", "length") for _ in range(B)]
    steps = [[captured[p // G, : lengths[p // G]]] if captured is not None else [] for p in range(B)]
    active = list(range(B))
    for step in range(max_tokens):
        key, sub = mx.random.split(key)
        if token_checks is None:
            next_tokens = sample_token(logits, temperature, sub)
        else:
            next_tokens = sample_valid_tokens(logits, temperature, rng,
                                              [(token_checks[row], out[row].tokens) for row in active])
        logprobs = -fast_math.cross_entropy(logits, next_tokens)
        next_list, lp_list = next_tokens.tolist(), logprobs.tolist()
        keep = []
        for j, row in enumerate(active):
            done = out[row]
            done.tokens.append(next_list[j])
            done.logprobs.append(lp_list[j])
            if next_list[j] in stop_ids:
                done.finish = "eot"
                continue
            done.text = tokenizer.decode(done.tokens)
            if ends_with_arrow(done.text):
                done.finish = "arrow"
            else:
                keep.append(j)
        if not keep or step == max_tokens - 1:
            break
        if len(keep) < len(active):
            idx = mx.array(keep)
            for c in cache:
                c.filter(idx)
            next_tokens = next_tokens[idx]
            active = [active[j] for j in keep]
        hidden, captured = forward(next_tokens[:, None], cache)
        logits = head(hidden[:, -1, :]).astype(mx.float32)
        if captured is not None:
            for j, row in enumerate(active):
                steps[row].append(captured[j])
    if capture_layer is not None:
        for row, done in zip(range(B), out):
            done.hidden = mx.concatenate(steps[row], axis=0)
        mx.eval([c.hidden for c in out])
    return [out[p * G : (p + 1) * G] for p in range(P)]
