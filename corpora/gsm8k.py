"""GSM8K grade-school word problems as word_problem examples, for training.

``data/gsm8k/train.jsonl`` is the training split of GSM8K (Cobbe et al., 2021): 7,473
problems written by people other than MAWPS's and ASDiv-A's authors, each with a worked
solution whose calculator annotations (``<<48/2=24>>``) spell out every operation and a
final ``#### 72``. A problem becomes an example when its annotations chain into one
expression: each annotation's number that equals an earlier annotation's result is that
earlier expression, the last annotation computes the final answer, and every annotation
feeds it. The spec is that expression in the word_problem grammar, checked to execute to
the answer; the query is the question as written.

A problem is dropped (and counted by reason, :func:`conversion`) when it has no
annotation or one that is not arithmetic on numbers (``<<5%*80=4>>``), when an annotation
feeds nothing or the last one is not the answer, when its expression takes more than
:data:`MAX_OPERATIONS` operations, when the router's copy constraint refuses its line (a
number the question writes in no form the constraint copies: "a dozen eggs" as 12 is
fine, "a week" as 7 is not), or when its question repeats an earlier one. The test split
is not vendored: GSM8K is a training corpus here, never an evaluation set.

Tags: ``source:gsm8k``, ``id:<line>`` (0-based line of the file), ``split:train``.
"""

from __future__ import annotations

import functools
import math
import re
from types import MappingProxyType

from lazarus_cot_router.constrain import LineConstraint
from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.numbers import format_number
from lazarus_cot_router.experts.word_problem import Expression, Operation, numbers_of
from lazarus_cot_router.prompts import target_text

from . import builtin_experts, data_jsonl
from .equations import EquationError, checked_spec, parse_infix
from .mawps import Conversion

PATH = ("gsm8k", "train.jsonl")
SPLITS = ("train",)
SOURCE_TAG = "source:gsm8k"
#: The longest expression kept. MAWPS + ASDiv-A, the other word-problem corpus, asks one or
#: two operations in 2,559 of its 2,605 training problems; 3,103 of the 6,290 GSM8K problems
#: whose annotations chain take four or more, chains of a length the router's requests seldom are.
MAX_OPERATIONS = 3

#: Why a problem was dropped.
NOT_ARITHMETIC = "an annotation is not arithmetic on numbers"
UNCHAINED = "an annotation feeds nothing, or the last one is not the answer"
TOO_LONG = f"more than {MAX_OPERATIONS} operations"
NOT_COPYABLE = "the copy constraint refuses its line"
DUPLICATE = "question repeats an earlier one"
REASONS = (NOT_ARITHMETIC, UNCHAINED, TOO_LONG, NOT_COPYABLE, DUPLICATE)

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_ARITHMETIC = re.compile(r"[0-9.+\-*/() ]+")
_OPERATOR = re.compile(r"([+\-*/])")


class DroppedProblem(Exception):
    """A problem that is not kept, with the reason (one of :data:`REASONS`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=1)
def rows() -> tuple[dict[str, str], ...]:
    """The file's problems (``question``, ``answer``), in file order."""
    return data_jsonl(*PATH)


def _number(token: str) -> str:
    """A number as a spec writes it: ``"0.5"`` for ``".5"``, ``"5"`` for ``"5.0"``."""
    return format_number(token.replace(",", ""))


def operations(expression: Expression) -> int:
    """How many operations ``expression`` takes (each joins two of its numbers)."""
    return len(numbers_of(expression)) - 1


def chained_expression(solution: str) -> tuple[Expression, str]:
    """The expression the solution's annotations chain into, and the solution's final
    answer; :class:`DroppedProblem` with the reason when they do not chain."""
    steps = _ANNOTATION.findall(solution)
    answer = _number(solution.rpartition("####")[2].strip())
    if not steps or any(not _ARITHMETIC.fullmatch(left) for left, _ in steps):
        raise DroppedProblem(NOT_ARITHMETIC)
    results: list[tuple[float, Expression]] = []
    used: set[int] = set()
    for left, result in steps:
        def leaf(token: str) -> Expression:
            value = float(token)
            for k in range(len(results) - 1, -1, -1):
                if math.isclose(results[k][0], value, rel_tol=1e-9):
                    used.add(k)
                    return results[k][1]
            return _number(token)

        try:
            expression = parse_infix(_OPERATOR.sub(r" \1 ", left), leaf)
            value = float(result.replace(",", "").strip())
        except (EquationError, ValueError):
            raise DroppedProblem(NOT_ARITHMETIC) from None
        if not isinstance(expression, Operation):
            raise DroppedProblem(NOT_ARITHMETIC)
        results.append((value, expression))
    if used != set(range(len(results) - 1)) or not math.isclose(results[-1][0], float(answer), rel_tol=1e-9):
        raise DroppedProblem(UNCHAINED)
    return results[-1][1], answer


def convert_row(row: dict[str, str], index: int) -> Example:
    """The example of one problem; :class:`DroppedProblem` with the reason if it is not kept.
    :class:`EquationError` if a chained expression does not execute to the answer."""
    expression, answer = chained_expression(row["answer"])
    if operations(expression) > MAX_OPERATIONS:
        raise DroppedProblem(TOO_LONG)
    spec = checked_spec(expression, float(answer), f"gsm8k line {index}")
    query = " ".join(row["question"].split())
    constraint = LineConstraint.for_experts(builtin_experts(), query, mode="generic")
    if not constraint.allows(target_text("word_problem", spec)):
        raise DroppedProblem(NOT_COPYABLE)
    return Example(query, "word_problem", spec, answer, (SOURCE_TAG, f"id:{index}", "split:train"))


@functools.lru_cache(maxsize=1)
def conversion() -> Conversion:
    """Convert every problem (cached)."""
    kept: list[Example] = []
    dropped: dict[str, list[int]] = {reason: [] for reason in REASONS}
    seen: set[str] = set()
    table = rows()
    for index, row in enumerate(table):
        try:
            example = convert_row(row, index)
        except DroppedProblem as exc:
            dropped[exc.reason].append(index)
            continue
        if example.query in seen:
            dropped[DUPLICATE].append(index)
            continue
        seen.add(example.query)
        kept.append(example)
    return Conversion(len(table), MappingProxyType({"train": tuple(kept)}),
                      MappingProxyType({k: tuple(v) for k, v in dropped.items()}))


def examples(split: str = "train") -> list[Example]:
    """The converted examples of ``split`` (only ``"train"``), in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown GSM8K split {split!r}; expected one of {SPLITS}")
    return list(conversion().splits[split])
