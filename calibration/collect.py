"""Hidden states of every decoder layer at the two routing positions.

* ``prompt_last``: the last prompt token, whose logits predict the expert name.
* ``expert_token``: the first token of the gold routing line, teacher-forced
  (appended to the prompt), i.e. the hidden state at the ``<expert>`` token.

Both come from one forward per batch: the router's system prompt is prefilled
once and its KV cache shared by every row; each row holds only the query part
of the prompt plus the gold first token, right-padded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from lazarus_cot_router.decoding import SharedPrefix
from lazarus_cot_router.experts.base import Example, Expert
from lazarus_cot_router.hidden import POSITIONS, find_layers, install_capture, prefill_hidden
from lazarus_cot_router.prompts import encode_prompt, encode_target, router_system_prompt


@dataclass
class HiddenSet:
    """``hidden[position]`` is ``[L, N, D]`` (layer, example, hidden size)."""

    hidden: dict[str, np.ndarray]
    labels: list[str]
    queries: list[str]
    seconds: float = 0.0
    tokens: int = 0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_layers(self) -> int:
        return next(iter(self.hidden.values())).shape[0]

    def at(self, layer: int, position: str) -> np.ndarray:
        return self.hidden[position][layer]


def calibration_examples(experts: dict[str, Expert]) -> list[Example]:
    """Each expert's hand-written ``calibration_prompts`` as examples (empty
    spec: only the expert's first token is used)."""
    return [
        Example(query=q, expert=name, spec="", answer=None, tags=("calibration_prompt",))
        for name, expert in experts.items()
        for q in expert.calibration_prompts
    ]


def first_target_token(tokenizer, example: Example) -> int:
    return encode_target(tokenizer, example.expert, example.spec)[0]


def collect_hidden(
    model,
    tokenizer,
    experts: dict[str, Expert],
    examples: Sequence[Example],
    *,
    batch_size: int = 32,
    shared_prefix: bool = True,
    progress: bool = True,
    desc: str = "collect",
    layout: str = "as_written",
) -> HiddenSet:
    """Hidden states of all layers at both positions for ``examples``, prompted
    with the router system prompt over ``experts``, each query laid out as ``layout`` says."""
    from tqdm import tqdm

    system = router_system_prompt(list(experts.values()))
    rows = []
    prefix_ids = None
    for ex in examples:
        prefix, suffix = encode_prompt(tokenizer, system, ex.query, layout)
        if prefix_ids is None:
            prefix_ids = prefix
        elif prefix != prefix_ids:
            raise ValueError("the chat template produced different prefixes for two queries")
        rows.append(suffix + [first_target_token(tokenizer, ex)])
    if not rows:
        raise ValueError("no examples to collect")
    if not shared_prefix:
        rows = [prefix_ids + r for r in rows]
    num_layers = len(find_layers(model))
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = None
    start = time.perf_counter()
    capture = install_capture(model, "all")
    try:
        prefix = SharedPrefix(model, prefix_ids) if shared_prefix else None
        bar = tqdm(total=len(rows), desc=desc, unit="q", disable=not progress, leave=False)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            hidden = prefill_hidden(model, capture, [rows[i] for i in idx], prefix=prefix, last=2)
            if out is None:
                dim = hidden[0].shape[-1]
                out = {p: np.zeros((num_layers, len(rows), dim), dtype=np.float32) for p in POSITIONS}
            for layer in range(num_layers):
                h = np.asarray(hidden[layer], dtype=np.float32)
                out["prompt_last"][layer, idx] = h[:, 0]
                out["expert_token"][layer, idx] = h[:, 1]
            bar.update(len(idx))
        bar.close()
    finally:
        capture.remove()
    seconds = time.perf_counter() - start
    return HiddenSet(
        hidden=out,
        labels=[ex.expert for ex in examples],
        queries=[ex.query for ex in examples],
        seconds=seconds,
        tokens=sum(map(len, rows)) + (len(prefix_ids) if shared_prefix else 0),
        meta={"prefix_tokens": len(prefix_ids), "shared_prefix": shared_prefix, "batch_size": batch_size},
    )


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """Drop repeated queries (first occurrence wins)."""
    seen, out = set(), []
    for ex in examples:
        if ex.query not in seen:
            seen.add(ex.query)
            out.append(ex)
    return out
