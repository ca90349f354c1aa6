"""DeepMind's mathematics_dataset questions as routing examples: its test split for evaluation, its
train split for training.

``data/mathematics/arithmetic.jsonl`` holds 900 questions of the authors' ``interpolate``
test split (Saxton et al., ICLR 2019), written by ``scripts/generate_mathematics.py``:
200 each of the modules that ask one binary operation (``arithmetic__add_or_sub``,
``__mul``, ``__div``: "Total of -0.3 and 12.", "What is 5 less than -2?", "Divide -36 by
301.", "-3*-542") and 25 each of twelve modules that no expert answers (chains of
operations, other bases, roots, remainders, comparisons, rounding, unit and clock
conversions). Another team's phrasings of the arithmetic experts' own job, and numeric
questions that must stay chat. The router is never trained on them.

``data/mathematics/train.jsonl`` holds 1,380 questions of the authors' ``train`` split: 300 of
each one-operation module, and 15 of each of 32 modules of kinds the test file never samples
(equations, derivatives, polynomials, primes, digits, sorting, probability), which map to
``chat``; so the test file's one-operation modules are in-distribution for a router trained
on it, as CLINC150's test split is, and its twelve kinds that must stay chat are not.
:func:`examples` gives the ``train`` part or the ``dev`` part, about 10% held out by a stable
hash of the question.

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
import operator
from fractions import Fraction

from lazarus_cot_router.experts.base import Example

from . import builtin_experts, data_jsonl
from .equations import stable_share
from .text import written_numbers

PATH = ("mathematics", "arithmetic.jsonl")
TRAIN_PATH = ("mathematics", "train.jsonl")
SPLITS = ("train", "dev")
DEV_SHARE = 0.1
_DEV_SALT = "mathematics:dev"
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


@functools.lru_cache(maxsize=2)
def rows(path: tuple[str, str] = PATH) -> tuple[dict, ...]:
    """The questions (``module, question, answer``) of the test file, or of ``path``, in file order."""
    return data_jsonl(*path)


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


@functools.lru_cache(maxsize=2)
def _conversion(path: tuple[str, str] = PATH) -> tuple[tuple[Example, ...], tuple[str, ...]]:
    kept, dropped = [], []
    for row in rows(path):
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


def examples(split: str = "train") -> list[Example]:
    """The train file's kept questions of ``split`` (``"train"`` or ``"dev"``), in file order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return [e for e in _conversion(TRAIN_PATH)[0] if (stable_share(e.query, _DEV_SALT) < DEV_SHARE) == (split == "dev")]


def dropped() -> tuple[str, ...]:
    """The questions left out because two operations answer them (:data:`AMBIGUOUS`)."""
    return _conversion()[1]
