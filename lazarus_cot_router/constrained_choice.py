"""Constrained decoding as mlx-lm logits processors, one instance per sequence.

:class:`ConstrainedChoice` (greedy, the rewriter's): at each step the
highest-scoring token that keeps the routing line valid under a
:class:`~lazarus_cot_router.constrain.LineConstraint` wins, and only the tokens
ranked above it are masked, so the probabilities the rewriter reports stay the
model's own; ``masked`` keeps the largest share of the model's probability it
had to mask at one step (how far the line the model preferred left the
grammar or the query's words). :class:`SampledChoice` (RL's): the next token
is drawn from the model's distribution restricted to the tokens a check (a
``ConstrainedChoice``) accepts. Both run inside :func:`lazarus_cot_router.decoding.decode_batch`."""

from __future__ import annotations

from typing import Protocol, Sequence

import mlx.core as mx
import numpy as np

from .constrain import LineConstraint
from .grammar import ARROW

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
        self._minus_ids: dict[str, int | None] = {}  # the minus token after each leading whitespace
        self.dead = False  # no valid line was reachable: the line was ended where it stood
        self.masked = 0.0  # the largest share of the model's probability masked at one step

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

    def minus_before(self, generated: list[int], token: int) -> int | None:
        """The minus to write first where the model's choice ``token`` begins a number the query
        writes only with its own minus: it copies the digits of "-37.9" and drops the sign
        ("400 - 37.9" for "400 less -37.9"), and the line would otherwise take the next
        valid token, another number of the query ("400 - 5" for "... like I'm five")."""
        piece = self.tokenizer.decode([token])
        digits = piece.lstrip()
        if not digits[:1].isdigit() or not any(n.startswith(digits) for n in self.constraint.signed_numbers):
            return None
        lead = piece[:len(piece) - len(digits)]
        if lead not in self._minus_ids:
            ids = self.tokenizer.encode(lead + "-", add_special_tokens=False)
            self._minus_ids[lead] = ids[0] if len(ids) == 1 else None
        minus = self._minus_ids[lead]
        if minus is None or not self.valid(generated, minus):
            return None
        text = self.head + self.tokenizer.decode(generated + [minus])
        return minus if self.constraint.leads_somewhere(text + digits) else None

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
        if ARROW in self.head + self.tokenizer.decode(generated):
            # The line is finished; mlx-lm's generator computes one step past the end of a
            # sequence before the decoder removes it, and that step has nothing to constrain.
            return logits
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
                    return self._override(logits, row, ranked[:i])
                if i == 0 and (minus := self.minus_before(generated, token)) is not None:
                    # The model chose the number; only its sign is written for it.
                    return self._override(logits, row, [minus], keep_only=True, honoured=[token])
            # None of the best tokens keeps the line valid: ask the grammar what
            # may come next and take the one the model scores highest.
            valid = self.grammar_tokens(generated)
            if valid:
                best = max(valid, key=lambda t: row[t].item())
                return self._override(logits, row, [best], keep_only=True)
            if not self.relax():
                # Nothing keeps the line valid, even without the ordering rules: it ends here and
                # the rewriter passes the query through rather than run what the model writes freely.
                self.dead = True
                return _mask(logits, row, [min(self.banned)], keep_only=True) if self.banned else logits

    def _override(self, logits: mx.array, row: mx.array, tokens: list[int], keep_only: bool = False,
                  honoured: Sequence[int] = ()) -> mx.array:
        """:func:`_mask`, recording the share of the model's probability it removes; ``honoured``
        tokens are masked but count as kept (what the model meant is still written)."""
        p = mx.softmax(row.astype(mx.float32))
        share = min(1.0, mx.sum(p[mx.array([*tokens, *honoured])]).item())  # a float32 sum may pass 1
        self.masked = max(self.masked, 1.0 - share if keep_only else share)
        return _mask(logits, row, tokens, keep_only)


def _mask(logits: mx.array, row: mx.array, tokens: list[int], keep_only: bool = False) -> mx.array:
    """``logits`` with ``tokens`` set to -inf, or with everything else set to -inf."""
    chosen = mx.zeros(row.shape, dtype=mx.bool_)
    chosen[mx.array(tokens)] = True
    blocked = mx.logical_not(chosen) if keep_only else chosen
    return mx.where(blocked, mx.array(float("-inf"), dtype=row.dtype), row).reshape(logits.shape)


def line_masked(model, tokenizer, cache: list, prompt: Sequence[int], text: str, check: ConstrainedChoice,
                top_k: int = TOP_K) -> float:
    """The largest share of the model's probability ``check`` would mask at one step of ``text``
    written in its canonical tokenization (the one training teaches) after ``prompt``, run on
    ``cache`` (a fork holding the shared prefix): at each step, the probability of the tokens
    ranked above the line's own that the constraint rejects.

    Greedy decoding may take a valid token that is not the line's canonical one ("g" then "ro"
    for "groceries", " -" for " ->"), after which the model's next choices are ones it never saw
    in training and the constraint masks nearly all of them; this measures the same line the way
    the model was taught to write it."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        return 0.0
    logits = model(mx.array([*prompt, *ids[:-1]])[None], cache=cache)[0, len(prompt) - 1:]
    probs = mx.softmax(logits.astype(mx.float32), axis=-1)
    k = min(top_k, probs.shape[-1])
    top = mx.argpartition(-probs, k - 1, axis=-1)[:, :k]
    top_p = mx.take_along_axis(probs, top, axis=-1)
    own = mx.take_along_axis(probs, mx.array(ids)[:, None], axis=-1)[:, 0]
    above_all = mx.sum(mx.where(probs > own[:, None], probs, 0.0), axis=-1)
    mx.eval(top, top_p, own, above_all)
    worst = 0.0
    for step, token in enumerate(ids):
        p_own = own[step].item()
        masked, seen = 0.0, 0.0
        for candidate, p in zip(top[step].tolist(), top_p[step].tolist()):
            if p <= p_own or candidate == token:
                continue
            seen += p
            if not check.valid(ids[:step], candidate):
                masked += p
        masked += max(0.0, above_all[step].item() - seen)  # ranked above the line's token, beyond the top k
        worst = max(worst, masked)
    return min(1.0, worst)


def judged_share(masked: float, canonical: float | None) -> float:
    """The share a forced line is judged by: the smaller of the one masked as it was decoded and
    the one on its canonical tokens (:func:`line_masked`; ``None`` where it was not measured)."""
    return masked if canonical is None else min(masked, canonical)


class TokenCheck(Protocol):
    """What a line may go on with (:class:`ConstrainedChoice` is one)."""

    def valid(self, generated: list[int], token: int) -> bool: ...

    def grammar_tokens(self, generated: list[int]) -> list[int]: ...

    def relax(self) -> bool: ...


#: Draws rejected before looking among the ``FALLBACK_TOP_K`` likeliest tokens at once.
MAX_REJECTIONS = 8
FALLBACK_TOP_K = 64
#: How much of the distribution, and at most how many of its likeliest tokens,
#: :func:`likeliest_rejected` looks at.
REJECTED_MASS = 0.999
REJECTED_TOP_K = 16


class SampledChoice:
    """A logits processor that samples: it draws the next token from the
    temperature-scaled softmax restricted to the tokens ``check`` accepts
    (every token without a check; :func:`draw_valid_token`) and masks all
    others, so the generator's sampler takes it. ``logprobs`` collects the
    unrestricted, temperature-1 log-probability of each drawn token: the
    policy's own, which RL scores. With a check and ``record_rejected``,
    ``rejected`` collects, per step, the likeliest tokens it rejects
    (:func:`likeliest_rejected`), so RL can score the restricted policy the
    tokens were drawn from, and ``masked_steps`` the share of the model's
    probability held, at each step, by rejected tokens likelier than the drawn
    one (what :class:`ConstrainedChoice` would have masked to take it).
    ``seed`` fixes the draws."""

    def __init__(self, check: TokenCheck | None = None, temperature: float = 1.0, seed=0, record_rejected: bool = False):
        self.check, self.temperature, self.record_rejected = check, temperature, record_rejected
        self.rng = np.random.default_rng(seed)
        self.logprobs: list[float] = []
        self.rejected: list[list[int]] = []
        self.masked_steps: list[float] = []
        self._start: int | None = None

    def __call__(self, context: mx.array, logits: mx.array) -> mx.array:
        tokens = context.tolist()
        if self._start is None:
            self._start = len(tokens)
        generated = tokens[self._start:]
        row = logits.reshape(-1)
        z = np.array(row.astype(mx.float32), dtype=np.float64)
        token = draw_valid_token(z, self.temperature, self.rng, self.check, generated)
        top = z.max()
        log_total = np.log(np.exp(z - top).sum())
        self.logprobs.append(float(z[token] - top - log_total))
        if self.check is not None and self.record_rejected:
            p = np.exp(z - top - log_total)
            rejected = likeliest_rejected(p, self.check, generated, token)
            self.rejected.append(rejected)
            self.masked_steps.append(float(sum(p[t] for t in rejected if p[t] > p[token])))
        return _mask(logits, row, [token], keep_only=True)


def likeliest_rejected(p: np.ndarray, check: TokenCheck, generated: list[int], drawn: int) -> list[int]:
    """The tokens ``check`` rejects among the likeliest of the distribution ``p``, taken in
    order until they and the accepted ones hold ``REJECTED_MASS`` of it or ``REJECTED_TOP_K``
    were looked at (the drawn token is never among them): the mass a constraint removes, in
    the few tokens that hold nearly all of it."""
    order = np.argpartition(-p, min(REJECTED_TOP_K, len(p) - 1))[:REJECTED_TOP_K]
    rejected, seen = [], 0.0
    for token in sorted(order.tolist(), key=lambda t: -p[t]):
        if seen >= REJECTED_MASS:
            break
        seen += p[token]
        if token != drawn and not check.valid(generated, token):
            rejected.append(int(token))
    return rejected


def draw_valid_token(logits: np.ndarray, temperature: float, rng: np.random.Generator,
                     check: TokenCheck | None, generated: list[int]) -> int:
    """A token from the temperature-scaled softmax of ``logits`` restricted to
    those ``check`` accepts: draw, and on a rejected token zero it and draw
    again (exactly the restricted distribution, at one check per draw); after
    ``MAX_REJECTIONS`` rejections, draw among the accepted ones of the
    ``FALLBACK_TOP_K`` likeliest, and failing those, among the tokens the
    check's grammar offers. ``temperature`` 0 takes the likeliest accepted
    token; when nothing is accepted, the likeliest token."""
    p = np.exp((logits - logits.max()) / max(temperature, 1e-6))
    p /= p.sum()
    if check is None:
        return int(np.argmax(p)) if temperature <= 0 else int(rng.choice(len(p), p=p))
    if temperature > 0:
        q = p.copy()
        for _ in range(MAX_REJECTIONS):
            if q.sum() <= 0:
                break
            token = int(rng.choice(len(q), p=q / q.sum()))
            if check.valid(generated, token):
                return token
            q[token] = 0.0
    accepted = _accepted_fallback(p, check, generated)
    if not accepted:
        return int(np.argmax(p))
    if temperature <= 0:
        return max(accepted, key=lambda t: p[t])
    weights = p[accepted] + 1e-12
    return int(rng.choice(accepted, p=weights / weights.sum()))


def _accepted_fallback(p: np.ndarray, check: TokenCheck, generated: list[int]) -> list[int]:
    """The accepted tokens among the likeliest, else the ones the grammar
    offers, else those it offers once the check relaxes its rules."""
    top = np.argpartition(-p, min(FALLBACK_TOP_K, len(p) - 1))[:FALLBACK_TOP_K]
    return ([int(t) for t in top if check.valid(generated, int(t))] or check.grammar_tokens(generated)
            or (check.relax() and check.grammar_tokens(generated)) or [])
