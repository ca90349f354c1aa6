"""Numbers in specs and results: parsing, bounded arithmetic, formatting.

Arithmetic runs on :class:`~decimal.Decimal` with a fixed precision, so
``3.5 + 2.25`` is exactly ``5.75`` and no float artefacts reach a result.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation

from .base import MAX_ABS_NUMBER, LimitError, MathDomainError, SpecSyntaxError

#: ``digits(.digits)?`` in ASCII digits only (``\\d`` would admit other scripts).
UNSIGNED_PATTERN = r"[0-9]+(?:\.[0-9]+)?"
#: ``-?digits(.digits)?``.
NUMBER_PATTERN = rf"-?{UNSIGNED_PATTERN}"
NUMBER = re.compile(NUMBER_PATTERN)
OPERATORS = ("+", "-", "*", "/")
RESULT_DECIMALS = 6

def one_of(numbers) -> str:
    """A regular expression matching any of ``numbers`` as written, the longest
    first (so "16" is not taken for the start of a shorter "1")."""
    return "|".join(re.escape(n) for n in sorted(set(numbers), key=lambda n: (-len(n), n)))


_MAX_DIGITS = 40
_LIMIT = Decimal(int(MAX_ABS_NUMBER))
_QUANTUM = Decimal(1).scaleb(-RESULT_DECIMALS)
_CONTEXT = Context(prec=60, traps=[InvalidOperation, DivisionByZero])


def parse_number(text: str) -> Decimal:
    """Parse one number token; :class:`SpecSyntaxError` if it is not one,
    :class:`LimitError` if its magnitude exceeds ``MAX_ABS_NUMBER``."""
    if not NUMBER.fullmatch(text):
        raise SpecSyntaxError(f"not a number: {text[:40]!r}")
    if len(text) > _MAX_DIGITS:
        raise LimitError("number has too many digits")
    return bounded(Decimal(text), what="number")


def bounded(value: Decimal, what: str = "result") -> Decimal:
    """``value`` itself, or :class:`LimitError` if ``|value| > MAX_ABS_NUMBER``."""
    if abs(value) > _LIMIT:
        raise LimitError(f"{what} exceeds {MAX_ABS_NUMBER:g} in magnitude")
    return value


def apply(left: Decimal, op: str, right: Decimal) -> Decimal:
    """``left op right`` for op in ``+ - * /``, bounded; division by zero is a
    :class:`MathDomainError`."""
    if op == "+":
        value = _CONTEXT.add(left, right)
    elif op == "-":
        value = _CONTEXT.subtract(left, right)
    elif op == "*":
        value = _CONTEXT.multiply(left, right)
    elif op == "/":
        if right == 0:
            raise MathDomainError("division by zero")
        value = _CONTEXT.divide(left, right)
    else:
        raise SpecSyntaxError(f"unknown operator {op!r}")
    return bounded(value)


def format_number(value: Decimal | int | str) -> str:
    """The result form: an integer when whole (``8``), else rounded half-up to
    at most 6 decimals with trailing zeros dropped (``0.333333``); never ``-0``."""
    number = value if isinstance(value, Decimal) else Decimal(value)
    rounded = number.quantize(_QUANTUM, rounding=ROUND_HALF_UP, context=_CONTEXT)
    if rounded == 0:
        return "0"
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def normalize_number(text: str) -> str:
    """A number token in canonical form (``007`` -> ``7``, ``2.50`` -> ``2.5``)."""
    return format_number(parse_number(text))


#: A number with an optional percent sign (``15%`` is 0.15): an arithmetic operand.
PERCENT_NUMBER_PATTERN = rf"{NUMBER_PATTERN}%?"


def parse_operand(text: str) -> Decimal:
    """A number token, or one with a percent sign, ``N%`` meaning ``N / 100``
    (exactly: ``15%`` is 0.15); the same errors as :func:`parse_number`."""
    if text.endswith("%"):
        return parse_number(text[:-1]).scaleb(-2)
    return parse_number(text)


def plain_operand(text: str) -> str:
    """An operand as a plain number, exact and without a percent sign (``15%`` ->
    ``0.15``, ``0.5%`` -> ``0.005``, ``7`` -> ``7``): what a host that evaluates a
    plain expression can read."""
    if not text.endswith("%"):
        return text
    value = parse_operand(text)
    if value == 0:
        return "0"
    digits = format(value, "f")
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


def normalize_operand(text: str) -> str:
    """An operand in canonical form: :func:`normalize_number` of its number, its
    percent sign kept (``015%`` -> ``15%``)."""
    if text.endswith("%"):
        return normalize_number(text[:-1]) + "%"
    return normalize_number(text)
