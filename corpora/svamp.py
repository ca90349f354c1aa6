"""SVAMP as word_problem examples: for evaluation only.

SVAMP (``data/svamp/SVAMP.json``) is the 1,000-problem challenge set of
Patel et al. (2021): variations of ASDiv-A problems made to catch models that
answer from shallow cues. The router is never trained on it: this module has
only :func:`evaluation` (and the dropped ids), no training split, and the
MAWPS converter drops any query that is an SVAMP query.

A query is ``Body`` and ``Question`` joined (:func:`corpora.text.join_question`),
detokenized; the spec is the infix ``Equation`` in the word_problem grammar,
each number written as the query writes it, checked to execute to ``Answer``.
A problem is dropped (:func:`dropped`) when its answer is not what its
equation computes (:data:`ANSWER_ERRORS`, checked), when its equation has no operation
(``chal-555``: "8.0") or uses a number the query does not write (``chal-50``:
its equation subtracts 149, a number of no sentence).
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.numbers import format_number
from lazarus_cot_router.experts.word_problem import Operation

from . import data_text
from .equations import EquationError, checked_spec, parse_infix, unwritten_numbers
from .text import detokenize, join_question, number_form, written_numbers

PATH = ("svamp", "SVAMP.json")
SOURCE_TAG = "source:svamp"


@functools.lru_cache(maxsize=1)
def problems() -> tuple[dict, ...]:
    """SVAMP's problems (``ID, Body, Question, Equation, Answer, Type``), in file order."""
    return tuple(json.loads(data_text(*PATH)))


def query_of(problem: dict) -> str:
    """The query of one problem: body and question joined and detokenized."""
    return detokenize(join_question(problem["Body"], problem["Question"]))


@functools.lru_cache(maxsize=1)
def queries() -> frozenset[str]:
    """Every SVAMP query (converted or not), to keep them out of training data."""
    return frozenset(query_of(problem) for problem in problems())


#: Why a problem was dropped.
NO_OPERATION = "equation without an operation"
CONSTANT = "equation number not written in the query"
WRONG_ANSWER = "answer disagrees with the equation"

#: Problems whose answer is not what their equation computes (checked: these, and only these).
ANSWER_ERRORS = {"chal-680": "4 - 2 + 3 is 5; the file says 1"}


def convert_problem(problem: dict) -> tuple[Example | None, str | None]:
    """The example of one problem, or ``None`` and why it was dropped."""
    query = query_of(problem)
    # The equation writes floats ("4.0"); the spec writes the number as the query does.
    written = {}
    for token in written_numbers(query):
        written.setdefault(Decimal(token), token)

    def leaf(token: str):
        return written.get(Decimal(token)) or number_form(token)[1]

    expression = parse_infix(problem["Equation"], leaf)
    if not isinstance(expression, Operation):
        return None, NO_OPERATION
    spec = checked_spec(expression, float(problem["Answer"]), f"svamp {problem['ID']}")
    if unwritten_numbers(expression, query):
        return None, CONSTANT
    tags = (SOURCE_TAG, f"id:{problem['ID']}", f"type:{problem['Type']}")
    return Example(query, "word_problem", spec, format_number(str(problem["Answer"])), tags), None


@functools.lru_cache(maxsize=1)
def _converted() -> tuple[tuple[Example, ...], dict[str, tuple[str, ...]]]:
    kept: list[Example] = []
    dropped: dict[str, list[str]] = {WRONG_ANSWER: [], NO_OPERATION: [], CONSTANT: []}
    for problem in problems():
        try:
            example, reason = convert_problem(problem)
        except EquationError:
            if problem["ID"] not in ANSWER_ERRORS:
                raise
            dropped[WRONG_ANSWER].append(problem["ID"])
            continue
        if problem["ID"] in ANSWER_ERRORS:
            raise EquationError(f"svamp {problem['ID']} is listed in ANSWER_ERRORS but converts to its answer")
        if example is None:
            dropped[reason].append(problem["ID"])
        else:
            kept.append(example)
    return tuple(kept), {reason: tuple(ids) for reason, ids in dropped.items()}


def evaluation() -> list[Example]:
    """SVAMP's converted problems, in file order: for evaluation only, never for training."""
    return list(_converted()[0])


def benchmark() -> list[Example]:
    """All 1,000 problems, in file order, as the benchmark counts them: the converted ones, and
    each dropped one with an empty gold spec, the file's answer and an ``unwritable:`` tag (no spec
    of the grammar reaches it, so it counts as a miss)."""
    converted = {example.tags[1]: example for example in evaluation()}
    reasons = {problem_id: reason for reason, ids in dropped().items() for problem_id in ids}
    return [converted.get(f"id:{problem['ID']}") or Example(
                query_of(problem), "word_problem", "", format_number(str(problem["Answer"])),
                (SOURCE_TAG, f"id:{problem['ID']}", f"type:{problem['Type']}", f"unwritable:{reasons[problem['ID']]}"))
            for problem in problems()]


def dropped() -> dict[str, tuple[str, ...]]:
    """Ids of the problems not converted, per reason."""
    return dict(_converted()[1])
