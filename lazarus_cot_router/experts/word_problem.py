"""The word_problem expert: ``[<entity>:]<num> | <step> [<step> ...]``.

A step is an operator (``+ - * /``) and an operand: a number, or a chain in
parentheses, ``(<num> <step> ...)``, evaluated first. Steps apply left to right
to the starting quantity: ``eggs:16 | -3 -4 *2`` is ``(16 - 3 - 4) * 2 = 18``,
``12 | /(1 +2)`` is ``12 / (1 + 2) = 4``, ``10 | -(2 *3)`` is ``10 - 2 * 3``.
The entity is optional (``4 | -3``). See docs/FORMAT.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, NamedTuple, Union

from .base import (
    MAX_OPS,
    Expert,
    ExpertError,
    HostAction,
    LimitError,
    SpecSyntaxError,
    require_spec,
)
from .numbers import NUMBER_PATTERN, apply, format_number, normalize_number, parse_number
from .vocabulary import SpecVocabulary, copy_vocabulary, number_pattern

#: Money units and the symbol a query writes them with ("euros": "€").
MONEY_UNITS = {"dollars": "$", "pounds": "£", "euros": "€"}

#: How deep parentheses may nest (``4 | -(3 *(2 +1))`` is depth 2).
MAX_DEPTH = 8

_ENTITY = r"[A-Za-z][A-Za-z0-9_ -]*?"
_OPERATOR = r"\s*[-+*/]\s*"
_HEAD = re.compile(rf"(?:({_ENTITY})\s*:\s*)?({NUMBER_PATTERN})\s*\|")
_STEP_OPERATOR = re.compile(r"\s*([-+*/])\s*")
_NUMBER = re.compile(NUMBER_PATTERN)
_OPEN = re.compile(r"\(\s*")
_CLOSE = re.compile(r"\s*\)")


def _operand_pattern(depth: int, number: str) -> str:
    """An operand with parentheses nested at most ``depth`` deep (a regular
    expansion, so the pattern needs no recursion and bounds the depth itself)."""
    operand = number
    for _ in range(depth):
        operand = rf"(?:{number}|\(\s*{number}(?:{_OPERATOR}{operand})*\s*\))"
    return operand


def spec_pattern(number: str = NUMBER_PATTERN) -> str:
    """The grammar as one regular expression, each number matching ``number`` (the decoder
    checks prefixes of a spec with the ``regex`` module's ``fullmatch(..., partial=True)``)."""
    return rf"(?:{_ENTITY}\s*:\s*)?{number}\s*\|(?:{_OPERATOR}{_operand_pattern(MAX_DEPTH, number)})+"


#: The grammar: exactly the specs :func:`parse_spec` takes, but for the ``MAX_OPS`` bound.
SPEC_PATTERN = spec_pattern()


@dataclass(frozen=True)
class Operation:
    """``left op right`` (op in ``+ - * /``); a leaf is a number token as written."""

    op: str
    left: Expression
    right: Expression


#: An expression tree: a number token (``"16"``, ``"0.5"``, ``"-2"``) or an :class:`Operation`.
Expression = Union[str, Operation]


class ParsedSpec(NamedTuple):
    """A parsed spec: its entity (``None`` when it names none) and its expression."""

    entity: str | None
    expression: Expression


class _Parser:
    """Recursive descent over one stripped spec, counting steps and depth as it goes."""

    def __init__(self, text: str, position: int):
        self.text, self.position, self.ops = text, position, 0
        self.operator_offsets: list[int] = []
        self.number_offsets: list[int] = []

    def near(self) -> str:
        return repr(self.text[self.position:self.position + 20])

    def chain(self, start: str, depth: int) -> Expression:
        value: Expression = start
        while True:
            operator = _STEP_OPERATOR.match(self.text, self.position)
            if not operator:
                return value
            self.position = operator.end()
            self.operator_offsets.append(operator.start(1))
            value = Operation(operator.group(1), value, self.operand(depth))
            self.ops += 1
            if self.ops > MAX_OPS:
                raise LimitError(f"more than {MAX_OPS} operations")

    def number(self) -> str:
        match = _NUMBER.match(self.text, self.position)
        if not match:
            raise SpecSyntaxError(f"expected a number near {self.near()}")
        self.number_offsets.append(match.start())
        self.position = match.end()
        return match.group()

    def operand(self, depth: int) -> Expression:
        opened = _OPEN.match(self.text, self.position)
        if not opened:
            return self.number()
        if depth + 1 > MAX_DEPTH:
            raise LimitError(f"parentheses nested deeper than {MAX_DEPTH}")
        self.position = opened.end()
        inner = self.chain(self.number(), depth + 1)
        closed = _CLOSE.match(self.text, self.position)
        if not closed:
            raise SpecSyntaxError(f"expected an operation or ')' near {self.near()}")
        self.position = closed.end()
        return inner


def parse_spec(spec: str) -> ParsedSpec:
    """Parse ``spec`` (number tokens kept as written); :class:`SpecSyntaxError`
    if it does not follow the grammar, :class:`LimitError` past ``MAX_OPS``
    steps (nested ones counted) or ``MAX_DEPTH`` nested parentheses."""
    return _parse(spec)[0]


def operator_offsets(spec: str) -> list[int]:
    """Where in ``spec`` each step's operator is written (character offsets, in
    the order written), so a trainer can find the tokens that choose them."""
    return _offsets(spec, "operator_offsets")


def number_offsets(spec: str) -> list[int]:
    """Where in ``spec`` each number is written, the start first (character offsets, in the
    order written): which of the query's numbers goes where is the line's other choice."""
    return _offsets(spec, "number_offsets")


def _offsets(spec: str, kind: str) -> list[int]:
    lead = len(spec) - len(spec.lstrip())
    return [lead + offset for offset in getattr(_parse(spec)[1], kind)]


def _parse(spec: str) -> tuple[ParsedSpec, _Parser]:
    text = require_spec(spec)
    head = _HEAD.match(text)
    if not head:
        raise SpecSyntaxError("word_problem expects '[<entity>:]<num> | <op><operand> ...'")
    parser = _Parser(text, head.end())
    parser.number_offsets.append(head.start(2))
    expression = parser.chain(head.group(2), 0)
    if parser.position < len(text):
        raise SpecSyntaxError(f"bad operation near {parser.near()}")
    if not parser.ops:
        raise SpecSyntaxError("word_problem needs at least one operation after '|'")
    entity = " ".join(head.group(1).split()) if head.group(1) else None
    return ParsedSpec(entity, expression), parser


def evaluate(expression: Expression) -> Decimal:
    """The value of ``expression`` as a :class:`~decimal.Decimal` (bounded
    arithmetic of :mod:`.numbers`; typed errors)."""
    if isinstance(expression, str):
        return parse_number(expression)
    return apply(evaluate(expression.left), expression.op, evaluate(expression.right))


def map_numbers(expression: Expression, function: Callable[[str], Expression]) -> Expression:
    """``expression`` with each number token replaced by ``function(token)``."""
    if isinstance(expression, str):
        return function(expression)
    return Operation(expression.op, map_numbers(expression.left, function), map_numbers(expression.right, function))


def numbers_of(expression: Expression) -> list[str]:
    """The number tokens of ``expression``, left to right."""
    if isinstance(expression, str):
        return [expression]
    return numbers_of(expression.left) + numbers_of(expression.right)


#: Operators whose right operand's chain may be written without parentheses, with
#: the chain's operators to allow and how each one changes: ``a - (b + c)`` is
#: ``a -b -c``. ``a / (b / c)`` keeps its parentheses: ``a /b *c`` would not fail
#: on ``c = 0`` as the original does.
_FLATTEN = {
    "+": {"+": "+", "-": "-"},
    "-": {"+": "-", "-": "+"},
    "*": {"*": "*", "/": "/"},
    "/": {"*": "/"},
}


def _chain(expression: Expression) -> tuple[str, list[tuple[str, Expression]]]:
    """``(start, [(op, operand), ...])``: ``expression`` as a left-deep chain, a
    right operand's own chain spliced in where :data:`_FLATTEN` allows."""
    steps: list[tuple[str, Expression]] = []
    while isinstance(expression, Operation):
        steps.append((expression.op, expression.right))
        expression = expression.left
    flat: list[tuple[str, Expression]] = []
    for op, operand in reversed(steps):
        if isinstance(operand, Operation):
            start, inner = _chain(operand)
            table = _FLATTEN[op]
            if all(inner_op in table for inner_op, _ in inner):
                flat.append((op, start))
                flat.extend((table[inner_op], item) for inner_op, item in inner)
                continue
        flat.append((op, operand))
    return expression, flat


def _steps(steps: list[tuple[str, Expression]]) -> str:
    return " ".join(f"{op}{operand}" if isinstance(operand, str) else f"{op}({_chain_text(operand)})"
                    for op, operand in steps)


def _chain_text(expression: Expression) -> str:
    start, steps = _chain(expression)
    return f"{start} {_steps(steps)}"


def write_spec(expression: Expression, entity: str | None = None) -> str:
    """The shortest spec of ``expression``: left-deep chains, parentheses only
    around a right operand that is not a number and cannot be spliced into the
    chain (``a + (b - c)`` is ``a | +b -c``; ``a - b * c`` is ``a | -(b *c)``).
    Number tokens are written as given. ``expression`` must be an
    :class:`Operation` (a spec has at least one step)."""
    if not isinstance(expression, Operation):
        raise ValueError("a word_problem spec needs at least one operation")
    start, steps = _chain(expression)
    head = f"{entity}:{start}" if entity else start
    return f"{head} | {_steps(steps)}"


class WordProblemExpert(Expert):
    name = "word_problem"
    description = "a quantity changed step by step: 'word_problem: eggs:16 | -3 -4 *2'"
    train_weight = 2.4  # a start and up to five signed steps to get right (docs/training.md)
    least_result = 0.0  # counts and amounts: 1 negative answer among MAWPS + ASDiv-A train's 2,605
    whole_results = True  # 2,416 of MAWPS + ASDiv-A train's 2,605 answers; every generated one
    calibration_prompts = (
        "Janet has 16 eggs, eats 3, bakes 4, sells rest for $2. How much?",
        "Tom has 20 apples. He gives away 5 and buys 8 more. How many apples does he have now?",
        "Maria has 12 cookies and eats 2. How many cookies are left?",
        "Sam has 30 marbles, loses 6, then finds 4. How many marbles does he have?",
        "Lucy has 24 stickers and splits them equally among 4 friends. How many does each friend get?",
        "Ben has $50. He spends $12 on lunch and earns $8. How much money does he have now?",
        "Emma has 9 books, buys 3 more and doubles her books. How many books does she have?",
        "Liam has 40 pencils. He gives away 10 and sells the rest for $2 each. How much money does he make?",
        "Olivia starts with 15 oranges. Then she eats 2. Next, she buys 7 more. How many oranges does she have now?",
        "Noah has 18 cards, loses 3, finds 5. How many left?",
    )

    def execute(self, spec: str) -> str:
        return format_number(evaluate(parse_spec(spec).expression))

    def canonical_spec(self, spec: str) -> str:
        # Numbers normalized, the entity lowercased, the shortest form of the
        # same expression: "a | +(b +c)" and "a | +b +c" compare equal.
        try:
            entity, expression = parse_spec(spec)
            return write_spec(map_numbers(expression, normalize_number), entity and entity.lower())
        except ExpertError:
            return super().canonical_spec(spec)

    def host_action(self, spec: str) -> HostAction:
        parse_spec(spec)
        return HostAction("word_problem", "execute", {"spec": " ".join(spec.split())})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        # Money amounts are written "€40" / "40 euros"; the spec names the unit the query's symbol stands for.
        units = [unit for unit, symbol in MONEY_UNITS.items() if symbol in query]
        # A number is negative only where the query writes it so. Ordering rule (``full`` decoding):
        # the numbers in the order the query states them.
        return copy_vocabulary(query, *units, pattern=spec_pattern(number_pattern(query)), needs_number=True,
                               computes=True, numbers="in_order")

    few_shot_specs = (
        ("Janet has 16 eggs, eats 3, bakes 4, sells rest for $2. How much?", "eggs:16 | -3 -4 *2"),
        ("Tom has 20 apples. He gives away 5 and buys 8 more. How many apples does he have now?", "apples:20 | -5 +8"),
        ("Lucy has 24 stickers and splits them equally among 4 friends. How many does each friend get?",
         "stickers:24 | /4"),
    )
