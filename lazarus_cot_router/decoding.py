"""Batched decoding of routing lines on top of mlx-lm's ``BatchGenerator``: the
one decoder of the rewriters (greedy, under :class:`~.constrained_choice.ConstrainedChoice`)
and of sampling (:mod:`.sampling`, under :class:`~.constrained_choice.SampledChoice`).

The router's system prompt is the same for every query, so its KV cache is
computed once (:class:`SharedPrefix`) and forked per query; only the query's own
tokens are prefilled. Decoding stops right after ``->`` (the expert writes the
rest), at the end-of-turn token, or after ``max_tokens``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import mlx.core as mx
from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import KVCache, make_prompt_cache

from .grammar import ARROW

#: Prompt tokens per forward pass. A causal attention step computes scores for
#: every (query, key) pair it holds, masked or not, so a long prompt in steps of
#: 128 does about half the attention work of one step (mlx-lm's default, 2,048,
#: is one step for the few-shot prompt): ``bench/prefill_steps.py``.
PREFILL_STEP_SIZE = 128


@dataclass
class Decoded:
    """One decoded completion."""

    tokens: list[int]
    text: str
    logprobs: list[float] = field(default_factory=list)
    finish: str = "length"  # "arrow" | "eot" | "length"; the rewriter adds "dead_end" | "overridden"
    masked: float = 0.0  # the largest share of the model's probability a constraint masked at one step
    masked_canonical: float | None = None  # the same, on the line's canonical tokenization (where it was judged)
    rejected: list[list[int]] = field(default_factory=list)  # per sampled token: likely tokens its constraint rejected


class SharedPrefix:
    """The KV cache of a token prefix, computed once and forked per sequence.
    ``cache``: the prefix's cache when the caller computed it already (RL
    builds it from the frozen blocks' part it keeps for the whole run)."""

    def __init__(self, model, prefix_ids: Sequence[int], cache: list | None = None):
        self.ids = list(prefix_ids)
        if cache is not None:
            self.cache = list(cache)
            return
        self.cache = make_prompt_cache(model)
        prefill(model, self.ids, self.cache)

    def extend(self, model, ids: Sequence[int]) -> "SharedPrefix":
        """This prefix followed by ``ids``, prefilled once on a fork of its cache: the
        shared start of several completions of one prompt."""
        cache = self.fork() or make_prompt_cache(model)
        prefill(model, ids, cache)
        return SharedPrefix(model, self.ids + list(ids), cache=cache)

    def fork(self) -> list:
        """A fresh cache holding the prefix; the original is never written."""
        if not self.ids:
            return None
        forked = []
        for layer in self.cache:
            if not isinstance(layer, KVCache):
                raise TypeError(f"cannot fork a {type(layer).__name__}; only KVCache is supported")
            # Slices of exactly ``offset`` tokens: the next update reallocates
            # instead of writing into arrays shared with the original.
            forked.append(kv_cache(*kv_contents(layer)))
        return forked


def prefill(model, ids: Sequence[int], cache: list) -> None:
    """Run ``ids`` through ``model`` into ``cache``, :data:`PREFILL_STEP_SIZE` tokens at a time."""
    tokens = mx.array(list(ids))[None]
    for start in range(0, len(ids), PREFILL_STEP_SIZE):
        model(tokens[:, start : start + PREFILL_STEP_SIZE], cache=cache)
        mx.eval([c.state for c in cache])


def kv_contents(layer) -> tuple[mx.array, mx.array]:
    """The keys and values a ``KVCache`` layer holds, sliced to its offset.

    mlx-lm 0.32 gives ``state`` as ``(keys, values, offset)`` with arrays that
    may run past the offset; up to 0.31 it is ``(keys, values)``, already
    sliced, with the offset an attribute. Both read the same here."""
    state = layer.state
    keys, values = state[0], state[1]
    offset = state[2] if len(state) > 2 else layer.offset
    return keys[..., :offset, :], values[..., :offset, :]


def kv_cache(keys: mx.array, values: mx.array) -> KVCache:
    """A ``KVCache`` holding exactly ``keys`` and ``values`` (``[B, H, T, D]``),
    built the same way on every mlx-lm version (``from_state`` changed its
    signature in 0.32)."""
    cache = KVCache()
    cache.keys, cache.values, cache.offset = keys, values, keys.shape[-2]
    return cache


def stops_after_arrow(text: str) -> bool:
    return text.rstrip().endswith(ARROW)


def decode_batch(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    *,
    prefix: SharedPrefix | Sequence[SharedPrefix] | None = None,
    max_tokens: int = 48,
    sampler: Callable | None = None,
    stop_text: Callable[[str], bool] = stops_after_arrow,
    stop_token_ids: Sequence[int] = (),
    batch_size: int = 64,
    prefill_batch_size: int = 8,
    prefill_step_size: int = PREFILL_STEP_SIZE,
    logits_processors: Sequence[Callable | None] | None = None,
) -> list[Decoded]:
    """Decode every prompt (the part after ``prefix``) and return completions in
    input order. Stop tokens are kept in ``tokens`` (RL scores exactly what was
    sampled) but not in ``text``. ``logits_processors`` holds one mlx-lm
    logits processor (or ``None``) per prompt. ``prefix`` is one prefix for
    every prompt or one per prompt.

    Prompts are prefilled ``prefill_batch_size`` at a time, longest first: a
    batch of similar lengths pads little, and the longest prompts, which tend
    to ask for the longest lines, start decoding while the others prefill
    instead of leaving a tail of lone decoding steps. Up to ``batch_size``
    sequences decode together; ``prefill_step_size`` tokens of a prompt go
    through the model at a time (:data:`PREFILL_STEP_SIZE`)."""
    if not prompts:
        return []
    stop_ids = set(stop_token_ids) | set(tokenizer.eos_token_ids)
    generator = batch_generator_class()(
        model,
        max_tokens=max_tokens,
        sampler=sampler,
        completion_batch_size=batch_size,
        prefill_batch_size=min(prefill_batch_size, batch_size),
        prefill_step_size=prefill_step_size,
    )
    try:
        if logits_processors is not None and len(logits_processors) != len(prompts):
            raise ValueError("one logits processor (or None) per prompt")
        prefixes = [prefix] * len(prompts) if prefix is None or isinstance(prefix, SharedPrefix) else list(prefix)
        if len(prefixes) != len(prompts):
            raise ValueError("one prefix for all prompts or one per prompt")
        if len({p is None or not p.ids for p in prefixes}) > 1:
            raise ValueError("either every prompt has a prefix or none has")
        held = [len(p.ids) if p is not None else 0 for p in prefixes]
        order = sorted(range(len(prompts)), key=lambda i: -(held[i] + len(prompts[i])))
        caches = [prefixes[i].fork() for i in order] if held[0] else None
        processors = None
        if logits_processors is not None:
            processors = [[logits_processors[i]] if logits_processors[i] is not None else [] for i in order]
        inserted = generator.insert([list(prompts[i]) for i in order], caches=caches, logits_processors=processors)
        uids = [0] * len(prompts)
        for i, uid in zip(order, inserted):
            uids[i] = uid
        results = {uid: Decoded([], "") for uid in uids}
        active = set(uids)
        # mlx-lm 0.31+: ``next_generated``; before, ``next`` returns the generated tokens.
        step = getattr(generator, "next_generated", None) or generator.next
        while active:
            responses = step()
            if not responses:
                break
            finished, still_queued = [], []
            for r in responses:
                if r.uid not in active:
                    continue
                out = results[r.uid]
                out.tokens.append(r.token)
                out.logprobs.append(r.logprobs[r.token].item())
                if r.token in stop_ids:
                    out.finish = "eot"
                else:
                    out.text = tokenizer.decode(out.tokens)
                    if stop_text(out.text):
                        out.finish = "arrow"
                if out.finish != "length" or r.finish_reason is not None:
                    finished.append(r.uid)
                    if r.finish_reason is None:  # our stop, not the generator's
                        still_queued.append(r.uid)
            active.difference_update(finished)
            if still_queued:
                generator.remove(still_queued)
        return [results[uid] for uid in uids]
    finally:
        generator.close()


def batch_generator_class() -> type:
    """mlx-lm's ``BatchGenerator``, or a subclass that makes an older one work
    like the newest: on mlx-lm 0.29 / 0.30.0 its ``insert`` takes no
    ``logits_processors`` (the subclass applies them), and before 0.31 its
    stream belongs to the thread that imported mlx-lm, which recent MLX
    refuses to use from another thread such as the rewriters' model thread
    (the subclass decodes on the calling thread's default stream)."""
    stream = getattr(sys.modules[BatchGenerator.__module__], "generation_stream", None)
    native_processors = "logits_processors" in inspect.signature(BatchGenerator.insert).parameters
    thread_local = isinstance(stream, getattr(mx, "ThreadLocalStream", ()))
    if native_processors and thread_local:
        return BatchGenerator
    return _compat_batch_generator(native_processors, thread_local)


@functools.cache
def _compat_batch_generator(native_processors: bool, thread_local: bool) -> type:
    bases = (BatchGenerator,) if native_processors else (_LogitsProcessorsMixin, BatchGenerator)
    namespace = {} if thread_local else {"next": _next_on_calling_thread}
    return type("CompatBatchGenerator", bases, namespace)


def _next_on_calling_thread(self):
    with mx.stream(mx.default_device()):
        return self._next()


class _LogitsProcessorsMixin:
    """Per-sequence logits processors for the ``BatchGenerator`` of mlx-lm
    0.29 / 0.30.0, applied as later versions apply them: each processor sees
    the tokens fed to its sequence so far (the prompt's last token first,
    then each generated one) and the logits before they are normalized."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._processors: dict[int, list] = {}
        self._fed: dict[int, list[int]] = {}
        self._rows: list[int] | None = None  # uids of the rows being prefilled

    def insert(self, prompts, max_tokens=None, caches=None, logits_processors=None):
        uids = super().insert(prompts, max_tokens=max_tokens, caches=caches)
        for uid, processors in zip(uids, logits_processors or ()):
            if processors:
                self._processors[uid], self._fed[uid] = list(processors), []
        return uids

    def remove(self, uids):
        super().remove(uids)
        for uid in uids:
            self._processors.pop(uid, None)
            self._fed.pop(uid, None)

    def _process_prompts(self, prompts):
        self._rows = [prompt[0] for prompt in prompts]
        try:
            return super()._process_prompts(prompts)
        finally:
            self._rows = None

    def _step(self, input_tokens, prompt_cache):
        # Rows are the prompts being prefilled, else the active batch (mlx-lm 0.29's ``_next``).
        rows = self._rows if self._rows is not None else self.active_batch.uids
        logits = self.model(input_tokens, cache=prompt_cache)[:, -1, :]
        if any(uid in self._processors for uid in rows):
            fed = input_tokens[:, -1].tolist()
            processed = []
            for e, uid in enumerate(rows):
                row = logits[e : e + 1]
                if uid in self._processors:
                    self._fed[uid].append(fed[e])
                    context = mx.array(self._fed[uid])
                    for processor in self._processors[uid]:
                        row = processor(context, row)
                processed.append(row)
            logits = mx.concatenate(processed, axis=0)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return self.sampler(logprobs), list(logprobs)


def name_probability(tokenizer, decoded: Decoded) -> float:
    """Probability the model gave to the expert name: the product of the
    probabilities of the tokens up to the one that writes ``:``."""
    total = 0.0
    for i, logprob in enumerate(decoded.logprobs):
        total += logprob
        if ":" in tokenizer.decode(decoded.tokens[: i + 1]):
            break
    return float(mx.exp(mx.array(total)).item())
