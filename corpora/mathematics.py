"""DeepMind's mathematics_dataset arithmetic questions as routing examples: for evaluation only.

``data/mathematics/arithmetic.jsonl`` holds 900 questions of the authors' ``interpolate``
test split (Saxton et al., ICLR 2019), written by ``scripts/generate_mathematics.py``:
200 each of the modules that ask one binary operation (``arithmetic__add_or_sub``,
``__mul``, ``__div``: "Total of -0.3 and 12.", "What is 5 less than -2?", "Divide -36 by
301.", "-3*-542") and 25 each of twelve modules that no expert answers (chains of
operations, other bases, roots, remainders, comparisons, rounding, unit and clock
conversions). Another team's phrasings of the arithmetic experts' own job, and numeric
questions that must stay chat. The router is never trained on them.

A one-operation question writes two numbers; its spec is the operation of the module's
family (``add`` or ``subtract``; ``multiply``; ``divide``) and the order of the two numbers
whose result is the file's answer (the question's order where both give it), a fraction
for most divisions ("-3/2204309"), checked to agree with what the expert executes. A
question that two operations answer (an operand of 0: "What is 7 take away 0?") is
dropped (:data:`AMBIGUOUS`). Every other module maps to ``chat``
(kind ``other``: the false positives a host cares about).
"""

from __future__ import annotations

import functools
import json
import operator
from fractions import Fraction

from lazarus_cot_router.experts.base import Example

from . import builtin_experts, data_text
from .text import written_numbers

PATH = ("mathematics", "arithmetic.jsonl")
SOURCE_TAG = "source:mathematics"
#: Module -> the experts whose operation its questions ask (the kind a report shows it as).
ONE_OPERATION = {
    "arithmetic__add_or_sub": ("add", "subtract"),
    "arithmetic__mul": ("multiply",),
    "arithmetic__div": ("divide",),
}
AMBIGUOUS = "two operations give the answer"
#: An arithmetic expert's symbol (``ArithmeticExpert.symbol``) as exact arithmetic on fractions.
_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class ConversionError(ValueError):
    """A question whose spec cannot be derived or does not execute to its answer."""


@functools.lru_cache(maxsize=1)
def rows() -> tuple[dict, ...]:
    """The file's questions (``module, question, answer``), in file order."""
    return tuple(json.loads(line) for line in data_text(*PATH).splitlines() if line.strip())


def _computes(symbol: str, left: str, right: str, want: Fraction) -> bool:
    if symbol == "/" and not Fraction(right):
        return False
    return _APPLY[symbol](Fraction(left), Fraction(right)) == want


def one_operation_spec(question: str, answer: str, experts: tuple[str, ...]) -> tuple[str, str]:
    """``(expert, spec)``: the operation among ``experts`` and the order of the question's two
    numbers that computes ``answer``."""
    numbers = written_numbers(question)  # with their own minus: "-0.0149", the "-542" of "-3*-542"
    if len(numbers) != 2:
        raise ConversionError(f"expected two numbers in {question!r}, found {numbers}")
    want = Fraction(answer)
    fits = []
    for name in experts:
        symbol = builtin_experts()[name].symbol
        # The question's own order first: a commutative operation keeps it.
        order = next(((a, b) for a, b in (numbers, numbers[::-1]) if _computes(symbol, a, b, want)), None)
        if order is not None:
            fits.append((name, f"{order[0]} {symbol} {order[1]}"))
    if len(fits) != 1:
        raise ConversionError(AMBIGUOUS if fits else f"no operation of {experts} gives {answer} in {question!r}")
    return fits[0]


def convert_row(row: dict) -> Example:
    """One question as an example: the arithmetic expert and spec, or ``chat``."""
    module, question = row["module"], row["question"]
    family = ONE_OPERATION.get(module)
    if family is None:
        return Example(question, "chat", "", None, (SOURCE_TAG, "kind:other", f"module:{module}"))
    name, spec = one_operation_spec(question, row["answer"], family)
    example = builtin_experts()[name].example(question, spec, (SOURCE_TAG, f"kind:{module.split('__')[1]}"))
    got, want = Fraction(example.answer), Fraction(row["answer"])
    if abs(got - want) > Fraction(1, 10**6) * max(1, abs(want)):
        raise ConversionError(f"{name}: {spec} executes to {example.answer}, not {row['answer']}")
    return example


@functools.lru_cache(maxsize=1)
def _conversion() -> tuple[tuple[Example, ...], tuple[str, ...]]:
    kept, dropped = [], []
    for row in rows():
        try:
            kept.append(convert_row(row))
        except ConversionError as exc:
            if str(exc) != AMBIGUOUS:
                raise
            dropped.append(row["question"])
    return tuple(kept), tuple(dropped)


def evaluation() -> list[Example]:
    """Every kept question, in file order (the ``mathematics`` suite)."""
    return list(_conversion()[0])


def dropped() -> tuple[str, ...]:
    """The questions left out because two operations answer them (:data:`AMBIGUOUS`)."""
    return _conversion()[1]
