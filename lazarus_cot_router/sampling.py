"""Sampling routing lines with the rewriter's batched decoder: RL's completions
(``training.rl``) and the rewriter's second opinions (:mod:`.rewriter`).

Every prompt is ``prefix + suffix``: the prefix (system message and the start
of the user turn) is the same for all of them, so its KV cache is computed once
(:class:`~lazarus_cot_router.decoding.SharedPrefix`); each suffix but its last
token is prefilled once on top of it, and that cache is forked per completion.
Each of the ``num_generations`` completions of a prompt decodes in
:func:`~lazarus_cot_router.decoding.decode_batch` under its own
:class:`~lazarus_cot_router.constrained_choice.SampledChoice`, which draws its
tokens (restricted to what its check accepts, if it has one) and records the
policy's log-probabilities. Decoding stops right after ``->``, at a stop token
(kept in ``tokens``, so a policy-gradient step scores exactly what was
sampled), or after ``max_tokens``.
"""

from __future__ import annotations

from typing import Sequence

from .constrain import DEFAULT_DECODING, LineConstraint
from .constrained_choice import ConstrainedChoice, SampledChoice, TokenCheck
from .decoding import Decoded, SharedPrefix, decode_batch


def sample_completions(
    model,
    tokenizer,
    prefix: SharedPrefix | None,
    suffixes: Sequence[Sequence[int]],
    *,
    num_generations: int = 1,
    temperature: float = 1.0,
    max_tokens: int = 24,
    stop_token_ids: Sequence[int] = (),
    seed: int = 0,
    token_checks: Sequence[TokenCheck] | None = None,
    record_rejected: bool = False,
) -> list[list[Decoded]]:
    """Sample ``num_generations`` completions of ``prefix + suffix`` for every
    suffix; one list of completions per suffix. ``temperature`` 0 is greedy.
    The same seed gives the same samples, whatever the batch.

    With ``token_checks`` (one per completion, ``num_generations`` per suffix
    in order), every token is drawn among those its check accepts; with
    ``record_rejected`` too, a completion's ``rejected`` lists, per token, the
    likely ones its check rejected, and its ``masked`` is the largest share of
    the model's probability that the likelier ones held at one step. A
    completion's ``logprobs`` are always the unrestricted policy's."""
    if not suffixes:
        return []
    if any(len(s) == 0 for s in suffixes):
        raise ValueError("every prompt needs at least one token after the prefix")
    G = num_generations
    n = len(suffixes) * G
    if token_checks is not None and len(token_checks) != n:
        raise ValueError(f"one token check per completion: {n} expected, {len(token_checks)} given")
    choices = [SampledChoice(token_checks[i] if token_checks is not None else None, temperature, seed=(seed, i),
                             record_rejected=record_rejected) for i in range(n)]
    if prefix is not None and prefix.ids:
        prompt_prefixes = [prefix.extend(model, s[:-1]) for s in suffixes]
        prompts = [[s[-1]] for s in suffixes for _ in range(G)]
        prefix = [p for p in prompt_prefixes for _ in range(G)]
    else:
        prompts = [list(s) for s in suffixes for _ in range(G)]
    outs = decode_batch(model, tokenizer, prompts, prefix=prefix, max_tokens=max_tokens,
                        stop_token_ids=stop_token_ids, logits_processors=choices)
    for out, choice in zip(outs, choices):
        out.logprobs = choice.logprobs[: len(out.tokens)]
        out.rejected = choice.rejected[: len(out.tokens)]
        # The generator runs one step past a line's end, where nothing is valid: not counted.
        out.masked = max(choice.masked_steps[: len(out.tokens)], default=0.0)
    return [outs[p * G : (p + 1) * G] for p in range(len(suffixes))]


def token_checks(experts, tokenizer, queries: Sequence[str], banned: Sequence[int], num_generations: int,
                 mode: str = DEFAULT_DECODING) -> list[ConstrainedChoice]:
    """The rewriter's constraint as a token check, ``num_generations`` per query
    in order: one :class:`LineConstraint` per query, shared (a check that relaxes
    it at a dead end relaxes a copy of its own)."""
    checks = []
    for query in queries:
        constraint = LineConstraint.for_experts(experts, query, mode)
        checks += [ConstrainedChoice(constraint, tokenizer, banned=banned) for _ in range(num_generations)]
    return checks
