"""Constrained decoding as an mlx-lm logits processor: at each step the
highest-scoring token that keeps the routing line valid under a
:class:`~lazarus_cot_router.constrain.LineConstraint` wins, and only the tokens
ranked above it are masked, so the probabilities the rewriter reports stay the
model's own. Used by the rewriter's decoding and by RL sampling alike."""

from __future__ import annotations

from typing import Sequence

import mlx.core as mx

from .constrain import LineConstraint

#: How many of the best tokens are tried, per step, before giving up on the constraint.
TOP_K = 64


class ConstrainedChoice:
    """A logits processor for mlx-lm's generators: masks the tokens ranked
    above the best one that keeps the line valid. One instance per sequence.
    ``banned``: the stop tokens, never written while the line can go on, and
    what ends a line that nothing keeps valid any more (``dead`` is then True)."""

    def __init__(self, constraint: LineConstraint, tokenizer, banned: Sequence[int] = (), head: str = "",
                 top_k: int = TOP_K):
        self.constraint, self.tokenizer, self.head = constraint, tokenizer, head
        self.banned, self.top_k = frozenset(banned), top_k
        self._start: int | None = None
        self.dead = False  # no valid line was reachable: the line was ended where it stood

    def valid(self, generated: list[int], token: int) -> bool:
        """Whether the line may go on with ``token`` after the ids ``generated``."""
        return token not in self.banned and self.constraint.leads_somewhere(
            self.head + self.tokenizer.decode(generated + [token]))

    def grammar_tokens(self, generated: list[int]) -> list[int]:
        """Valid next tokens that start what the grammar says may come next
        (for when none of the model's likeliest tokens is valid)."""
        text = self.head + self.tokenizer.decode(generated)
        candidates = {ids[0] for rest in self.constraint.continuations(text)
                      if (ids := self.tokenizer.encode(rest, add_special_tokens=False))}
        return sorted(t for t in candidates if self.valid(generated, t))

    def relax(self) -> bool:
        """Drop the ordering rules for the rest of this line; whether that changed anything."""
        if not self.constraint.can_relax:
            return False
        self.constraint = self.constraint.relaxed()
        return True

    def __call__(self, context: mx.array, logits: mx.array) -> mx.array:
        tokens = context.tolist()
        if self._start is None:
            self._start = len(tokens)
        generated = tokens[self._start:]
        row = logits.reshape(-1)
        if self.dead:
            return _mask(logits, row, [min(self.banned)], keep_only=True) if self.banned else logits
        k = min(self.top_k, row.shape[0])
        top = mx.argpartition(-row, k - 1)[:k]
        scores = row[top].tolist()
        ranked = [t for _, t in sorted(zip(scores, top.tolist()), key=lambda p: -p[0])]
        while True:
            for i, token in enumerate(ranked):
                if self.valid(generated, token):
                    if i == 0:
                        return logits
                    return _mask(logits, row, ranked[:i])
            # None of the best tokens keeps the line valid: ask the grammar what
            # may come next and take the one the model scores highest.
            valid = self.grammar_tokens(generated)
            if valid:
                best = max(valid, key=lambda t: row[t].item())
                return _mask(logits, row, [best], keep_only=True)
            if not self.relax():
                # Nothing keeps the line valid, even without the ordering rules: it ends here and
                # the rewriter passes the query through rather than run what the model writes freely.
                self.dead = True
                return _mask(logits, row, [min(self.banned)], keep_only=True) if self.banned else logits


def _mask(logits: mx.array, row: mx.array, tokens: list[int], keep_only: bool = False) -> mx.array:
    """``logits`` with ``tokens`` set to -inf, or with everything else set to -inf."""
    chosen = mx.zeros(row.shape, dtype=mx.bool_)
    chosen[mx.array(tokens)] = True
    blocked = mx.logical_not(chosen) if keep_only else chosen
    return mx.where(blocked, mx.array(float("-inf"), dtype=row.dtype), row).reshape(logits.shape)
