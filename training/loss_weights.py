"""Per-token weights for the SFT loss: the tokens that choose a word problem's
operators, and those that begin its numbers, can count for more than the rest of the line.

A word problem's line is mostly copied (its numbers come from the query under
the copy constraint); what the model has to decide is each step's operator,
and that is where its errors are, with which number starts the line and which
goes in each step. The operators and numbers are found by the word_problem
grammar's own parser (:func:`~lazarus_cot_router.experts.word_problem.operator_offsets`,
:func:`~lazarus_cot_router.experts.word_problem.number_offsets`),
so a ``-`` inside a number such as ``-2`` is never mistaken for one, and mapped
to tokens by decoding the target a token at a time, which works for any
tokenizer.
"""

from __future__ import annotations

from typing import Sequence

from lazarus_cot_router.experts.word_problem import number_offsets, operator_offsets
from lazarus_cot_router.prompts import target_text


def operator_positions(expert: str, spec: str) -> list[int]:
    """Character offsets, in the target line, of a word_problem spec's step
    operators (none for any other expert)."""
    return _line_positions(expert, spec, operator_offsets)


def number_positions(expert: str, spec: str) -> list[int]:
    """Character offsets, in the target line, where a word_problem spec's numbers
    begin (none for any other expert)."""
    return _line_positions(expert, spec, number_offsets)


def _line_positions(expert: str, spec: str, offsets) -> list[int]:
    if expert != "word_problem":
        return []
    line = target_text(expert, spec)
    start = line.index(spec, len(expert))
    return [start + offset for offset in offsets(spec)]


def token_ends(tokenizer, ids: Sequence[int], text: str) -> list[int] | None:
    """The length of the text decoded from ``ids[:k + 1]`` for each ``k``, or
    None unless every prefix decodes to a prefix of ``text`` and all of ``ids``
    to ``text`` itself (a tokenizer that rewrites text as it decodes)."""
    ends = []
    for k in range(1, len(ids) + 1):
        decoded = tokenizer.decode(list(ids[:k]))
        if not text.startswith(decoded):
            return None
        ends.append(len(decoded))
    return ends if ends and ends[-1] == len(text) else None


def operator_token_weights(tokenizer, expert: str, spec: str, target_ids: Sequence[int], weight: float,
                           number_weight: float = 1.0) -> list[float]:
    """One weight per target token (the line's tokens, then end of turn):
    ``weight`` for a token that writes a step operator, ``number_weight`` for one
    that begins a number (the larger where one token does both), 1 for the rest.
    Every token weighs 1 when the decoded line is not the target text."""
    weights = [1.0] * len(target_ids)
    heavy = [(p, weight) for p in operator_positions(expert, spec)] if weight != 1.0 else []
    if number_weight != 1.0:
        heavy += [(p, number_weight) for p in number_positions(expert, spec)]
    if not heavy:
        return weights
    ends = token_ends(tokenizer, target_ids[:-1], target_text(expert, spec))
    if ends is None:
        return weights
    start = 0
    for k, end in enumerate(ends):
        inside = [w for p, w in heavy if start <= p < end]
        if inside:
            weights[k] = max(inside)
        start = end
    return weights


def target_weights(tokenizer, examples, rows: Sequence[tuple[list[int], list[int]]], operator_weight: float,
                   number_weight: float = 1.0) -> list[list[float]] | None:
    """Per-token loss weights for ``rows`` (from :func:`training.sft.encode_examples`
    on ``examples``), or None when every token weighs the same."""
    if operator_weight == 1.0 and number_weight == 1.0:
        return None
    return [operator_token_weights(tokenizer, ex.expert, ex.spec, target, operator_weight, number_weight)
            for ex, (_, target) in zip(examples, rows)]
