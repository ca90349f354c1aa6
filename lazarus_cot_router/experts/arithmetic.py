"""The four arithmetic experts: ``<num> <op> <num>`` with one fixed operator each.

An operand may carry a percent sign, ``N%`` meaning ``N / 100``: "25 percent of 6999" is
``multiply: 25% * 6999``, the number copied as the query writes it and converted by the expert.
"""

from __future__ import annotations

import re
from typing import ClassVar

from .base import Expert, ExpertError, HostAction, OperatorMismatchError, SpecSyntaxError, require_spec
from .numbers import PERCENT_NUMBER_PATTERN, apply, format_number, normalize_operand, one_of, parse_operand, plain_operand
from .vocabulary import SpecVocabulary, copy_vocabulary, normalize_numbers, number_pattern

_SPEC = re.compile(rf"({PERCENT_NUMBER_PATTERN})\s*([-+*/])\s*({PERCENT_NUMBER_PATTERN})")


def _misspellings(word: str) -> list[str]:
    """``word``, and it with one letter dropped or two neighbours swapped: the typos people make
    and the generated training requests carry ("pecent", "percnet")."""
    dropped = [word[:k] + word[k + 1:] for k in range(1, len(word))]
    swapped = [word[:k] + word[k + 1] + word[k] + word[k + 2:] for k in range(len(word) - 1)]
    return sorted({word, *dropped, *swapped}, key=lambda w: (-len(w), w))


_PERCENT_SIGN = rf"(?:%|\bper\s*cent\b|\b(?:{'|'.join(_misspellings('percent'))})\b)"
#: A query that writes a percentage ("15%", "25 percent", "5 per cent"): its operands may carry ``%``.
_PERCENT = re.compile(_PERCENT_SIGN, re.IGNORECASE)
#: A number, and the percent sign or word after it if any.
_PERCENTAGE = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)(?![\d.]\d)(\s*{_PERCENT_SIGN})?", re.IGNORECASE)
#: An operator symbol the query writes between two numbers ("4.7+712", "-3*-542"): a spec's
#: symbols, a minus also as "−" (the minus :func:`.vocabulary.signed_numbers` reads).
_WRITTEN_OPERATOR = re.compile(r"(?<![\w.])[-\u2212]?\d+(?:\.\d+)?%?\s*([-+*/\u2212])(?=\s*[-\u2212]?\d)")


def written_operators(query: str) -> set[str]:
    """The operator symbols ``query`` writes between two numbers, as a spec writes them."""
    return {op.replace("\u2212", "-") for op in _WRITTEN_OPERATOR.findall(normalize_numbers(query))}


def operand_pattern(query: str) -> str:
    """An operand as the decoder may write it: a number signed only where the query signs it
    (:func:`~.vocabulary.number_pattern`), with a percent sign exactly where the query writes
    that number as a percentage ("25 percent of 6999": ``25% * 6999``; the router wrote
    ``-81.6 * 76.7`` for "Calculate 76.7% of -81.6")."""
    number = number_pattern(query)
    if not _PERCENT.search(query):
        return number
    marked, plain = percentages(query)
    if not marked:
        return f"{number}%?"  # "what percent of 80 is 20": no number is marked
    only_marked = marked - plain
    unmarked = rf"(?!-?(?:{one_of(only_marked)})(?![0-9.])){number}" if only_marked else number
    return rf"(?:(?=-?(?:{one_of(marked)})%){number}%|{unmarked}(?!%))"


def percentages(query: str) -> tuple[set[str], set[str]]:
    """``(numbers query writes as a percentage, numbers it writes without)``, as unsigned digits."""
    marked, plain = set(), set()
    for match in _PERCENTAGE.finditer(normalize_numbers(query)):
        (marked if match.group(2) else plain).add(match.group(1))
    return marked, plain


class ArithmeticExpert(Expert):
    """``<num> <op> <num>`` where ``op`` must be this expert's :attr:`symbol`."""

    symbol: ClassVar[str]
    # Beside 2,000 MAWPS problems, a weight of 1 left one-operation requests too few examples:
    # they drifted to chat (CLINC150 val calculator 7 of 10, generated calib divide 6 of 10).
    train_weight = 3.0

    def parse(self, spec: str) -> tuple[str, str]:
        text = require_spec(spec)
        match = _SPEC.fullmatch(text)
        if not match:
            raise SpecSyntaxError(f"{self.name} expects '<num> {self.symbol} <num>'")
        left, op, right = match.groups()
        if op != self.symbol:
            raise OperatorMismatchError(f"operator '{op}' does not belong to {self.name}")
        return left, right

    def execute(self, spec: str) -> str:
        left, right = self.parse(spec)
        return format_number(apply(parse_operand(left), self.symbol, parse_operand(right)))

    def canonical_spec(self, spec: str) -> str:
        try:
            left, right = self.parse(spec)
            return f"{normalize_operand(left)} {self.symbol} {normalize_operand(right)}"
        except ExpertError:
            return super().canonical_spec(spec)

    def host_action(self, spec: str) -> HostAction:
        # The host's math plugin evaluates a plain expression: a percentage goes as its decimal.
        left, right = self.parse(spec)
        return HostAction("math", "evaluate", {"expression": f"{plain_operand(left)} {self.symbol} {plain_operand(right)}"})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        # A query that writes its operator names the operation: "4.7+712" is no multiplication,
        # and "3 + 4 * 2" is no single one (the router wrote ``multiply: 4.7 * 712``).
        written = written_operators(query)
        if written and written != {self.symbol}:
            return SpecVocabulary("never")
        number = operand_pattern(query)
        return copy_vocabulary(query, pattern=rf"{number}\s*{re.escape(self.symbol)}\s*{number}", needs_number=True,
                               computes=True)


class MultiplyExpert(ArithmeticExpert):
    name = "multiply"
    symbol = "*"
    description = "multiply two numbers: 'multiply: 256 * 4'"
    system_prompt_example = ("256 * 4", "256 * 4")
    calibration_prompts = (
        "256 * 4", "What is 12 times 7?", "Multiply 35 by 3", "What is the product of 9 and 8?",
        "Calculate 15 * 15", "How much is 6 times 4?", "43 * 2", "What's 11 * 11?",
        "multiply 125 by 8", "Compute 72 * 3.5", "What is 19 times 21?",
    )
    few_shot_specs = (("256 * 4", "256 * 4"), ("What is 12 times 7?", "12 * 7"),
                        ("Multiply 3.5 by 4", "3.5 * 4"))


class AddExpert(ArithmeticExpert):
    name = "add"
    symbol = "+"
    description = "add two numbers: 'add: 3.5 + 2.25'"
    calibration_prompts = (
        "3.5 + 2.25", "What is 17 plus 25?", "Add 120 and 45", "What is the sum of 8 and 13?",
        "Calculate 250 + 750", "How much is 9 plus 16?", "44 + 56", "What's 1.5 + 2.5?",
        "sum of 300 and 12", "Compute 81 + 19", "add 7 and 35",
    )
    few_shot_specs = (("3.5 + 2.25", "3.5 + 2.25"), ("What is 17 plus 25?", "17 + 25"),
                        ("Add 120 and 45", "120 + 45"))


class SubtractExpert(ArithmeticExpert):
    name = "subtract"
    symbol = "-"
    description = "subtract two numbers: 'subtract: 50 - 17'"
    calibration_prompts = (
        "50 - 17", "What is 100 minus 37?", "Subtract 17 from 50", "Calculate 1000 - 250",
        "What is 81 take away 9?", "How much is 64 minus 28?", "What's the difference between 90 and 45?",
        "12.5 - 2.5", "take 15 away from 40", "Compute 500 - 123", "What is 7 minus 12?",
    )
    few_shot_specs = (("50 - 17", "50 - 17"), ("Subtract 17 from 50", "50 - 17"),
                        ("What is 100 minus 37?", "100 - 37"))


class DivideExpert(ArithmeticExpert):
    name = "divide"
    symbol = "/"
    description = "divide two numbers: 'divide: 72 / 9'"
    calibration_prompts = (
        "72 / 9", "What is 144 divided by 12?", "Divide 100 by 4", "Calculate 81 / 3",
        "How much is 56 divided by 7?", "What is the quotient of 90 and 6?", "1 / 3",
        "divide 7.5 by 2.5", "What's 1000 / 8?", "How many times does 6 go into 42?", "Compute 45 / 9",
    )
    few_shot_specs = (("72 / 9", "72 / 9"), ("What is 144 divided by 12?", "144 / 12"),
                        ("Divide 100 by 8", "100 / 8"))
