"""Equations of the public word-problem corpora, as word_problem specs.

MAWPS and ASDiv-A write prefix equations over placeholders
(``- number0 * number1 number2``); SVAMP writes infix equations with
parentheses (``( ( 4.0 + 13.0 ) * 15.0 )``). Both parse into the word_problem
expert's expression tree (:class:`~lazarus_cot_router.experts.word_problem.Operation`,
numbers as text) and are written by its one
:func:`~lazarus_cot_router.experts.word_problem.write_spec`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

from lazarus_cot_router.experts.numbers import OPERATORS
from lazarus_cot_router.experts.word_problem import (
    Expression,
    Operation,
    WordProblemExpert,
    numbers_of,
    write_spec,
)

from .text import written_numbers

#: Maps an equation's number token (``"number2"``, ``"15.0"``) to its expression.
Leaf = Callable[[str], Expression]

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_EXPERT = WordProblemExpert()


class EquationError(ValueError):
    """An equation that does not parse, or whose spec does not execute to the corpus's answer."""


def parse_prefix(equation: str, leaf: Leaf) -> Expression:
    """``"- number0 * number1 number2"`` as ``number0 - number1 * number2``."""
    tokens = equation.split()
    position = 0

    def term() -> Expression:
        nonlocal position
        if position >= len(tokens):
            raise EquationError(f"prefix equation ends early: {equation!r}")
        token = tokens[position]
        position += 1
        if token in OPERATORS:
            left = term()
            return Operation(token, left, term())
        return leaf(token)

    expression = term()
    if position != len(tokens):
        raise EquationError(f"tokens left over in prefix equation {equation!r}")
    return expression


def parse_infix(equation: str, leaf: Leaf) -> Expression:
    """``"( ( 4.0 + 13.0 ) * 15.0 )"`` as ``(4 + 13) * 15``; ``*`` and ``/``
    bind tighter than ``+`` and ``-``, equal operators group to the left."""
    tokens = equation.replace("(", " ( ").replace(")", " ) ").split()
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def primary() -> Expression:
        nonlocal position
        token = peek()
        if token is None or token in OPERATORS or token == ")":
            raise EquationError(f"expected a number or '(' in infix equation {equation!r}")
        position += 1
        if token != "(":
            return leaf(token)
        inner = expression(0)
        if peek() != ")":
            raise EquationError(f"unbalanced parentheses in infix equation {equation!r}")
        position += 1
        return inner

    def expression(floor: int) -> Expression:
        nonlocal position
        left = primary()
        while (op := peek()) in _PRECEDENCE and _PRECEDENCE[op] > floor:
            position += 1
            # Operators of the same level group to the left: the right side takes only tighter ones.
            left = Operation(op, left, expression(_PRECEDENCE[op]))
        return left

    result = expression(0)
    if position != len(tokens):
        raise EquationError(f"tokens left over in infix equation {equation!r}")
    return result


def unwritten_numbers(expression: Expression, query: str) -> list[str]:
    """The numbers of ``expression`` that ``query`` does not write in digits
    (constants of the equation such as ``100`` of a percentage)."""
    written = set(written_numbers(query))
    return [number for number in numbers_of(expression) if number not in written]


def checked_spec(expression: Expression, answer: float, where: str) -> str:
    """The spec of ``expression`` (:func:`write_spec`), after checking that the
    word_problem expert executes it to ``answer`` (relative 1e-6); else
    :class:`EquationError` naming ``where``."""
    spec = write_spec(expression)
    got = float(_EXPERT.execute(spec))
    if not math.isclose(got, answer, rel_tol=1e-6, abs_tol=1e-6):
        raise EquationError(f"{where}: spec {spec!r} executes to {got}, the corpus says {answer}")
    return spec


def stable_share(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``text`` and ``salt`` (SHA-256; no Python hash seed)."""
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
