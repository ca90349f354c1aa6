"""Distractors for public word problems: a statement with a number the answer does not use.

Most MAWPS + ASDiv-A problems use every number they write (89% of the training split), so a
model trained on them learns to copy every number in the order the text gives it. On the MAWPS
dev split the problems that write a number their equation leaves out are the weak ones (60%
execution against 76% for the rest, the default adapter). :func:`add_distractors` gives a share
of the training problems such a number: the opening statement of another training problem,
inserted before the question. The spec and the answer stay those of the original problem.

An opening statement introduces its own subject ("There are 41 short trees in the park.",
"Conner has 25000 dollars in his bank account."), so it does not continue the story it is put
into, which a later sentence ("He spends 3 of them.") would. A donor that shares a word with
the question, or writes a number the problem writes, is skipped, so the distractor never
speaks of what is asked or makes a copied number ambiguous.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Sequence

from corpora.text import written_numbers
from lazarus_cot_router.experts.base import Example

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"[a-z]{4,}")
DISTRACTOR_TAG = "augment:distractor"


def split_sentences(text: str) -> list[str]:
    """``text`` cut after each ``.``, ``!`` or ``?`` that a capitalized word follows."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def _numbers(text: str) -> set[str]:
    return {number.lstrip("-") for number in written_numbers(text)}


def unused_numbers(example: Example) -> set[str]:
    """The numbers ``example``'s query writes (sign aside) that its spec does not."""
    return _numbers(example.query) - _numbers(example.spec)


def opening_statement(example: Example) -> str | None:
    """The first sentence of ``example``'s query when it is a statement writing a number
    and not the whole query; otherwise None."""
    sentences = split_sentences(example.query)
    if len(sentences) < 2:
        return None
    first = sentences[0]
    if not first.endswith(".") or not written_numbers(first):
        return None
    return first


def insert_distractor(query: str, statement: str) -> str:
    """``query`` with ``statement`` put right before its last sentence (the question)."""
    sentences = split_sentences(query)
    return " ".join(sentences[:-1] + [statement] + sentences[-1:])


def fits(query: str, statement: str) -> bool:
    """Whether ``statement`` can distract ``query``: no number of the query, no word
    (four letters or more, any case) of its last sentence."""
    if _numbers(query) & _numbers(statement):
        return False
    asked = set(_WORD.findall(split_sentences(query)[-1].lower()))
    return not asked & set(_WORD.findall(statement.lower()))


def add_distractors(examples: Sequence[Example], share: float, donors: Sequence[Example],
                    rng: random.Random, tries: int = 20) -> list[Example]:
    """``examples`` with a distractor (:func:`insert_distractor`) in about ``share`` of them.

    Donors are the opening statements (:func:`opening_statement`) of ``donors`` other than
    the problem itself; a problem no donor :func:`fits` after ``tries`` draws stays as it is.
    A changed example keeps its spec and answer and gains the tag ``augment:distractor``.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, not {share!r}")
    statements = [(donor.query, text) for donor in donors if (text := opening_statement(donor))]
    out = []
    for example in examples:
        if not statements or rng.random() >= share:
            out.append(example)
            continue
        for _ in range(tries):
            source, statement = rng.choice(statements)
            if source != example.query and fits(example.query, statement):
                out.append(dataclasses.replace(example, query=insert_distractor(example.query, statement),
                                               tags=(*example.tags, DISTRACTOR_TAG)))
                break
        else:
            out.append(example)
    return out
