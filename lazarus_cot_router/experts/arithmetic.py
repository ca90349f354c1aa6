"""The four arithmetic experts: ``<num> <op> <num>`` with one fixed operator each.

An operand may carry a percent sign, ``N%`` meaning ``N / 100``: "25 percent of 6999" is
``multiply: 25% * 6999``, the number copied as the query writes it and converted by the expert.
"""

from __future__ import annotations

import random
import re
from typing import ClassVar

from .base import Example, Expert, ExpertError, HostAction, OperatorMismatchError, SpecSyntaxError, require_spec
from .numbers import (
    PERCENT_NUMBER_PATTERN,
    apply,
    format_number,
    normalize_operand,
    parse_number,
    parse_operand,
    plain_operand,
)
from .sampling import Split, Template, pool_ids, templates
from .vocabulary import SpecVocabulary, copy_vocabulary, number_pattern

_SPEC = re.compile(rf"({PERCENT_NUMBER_PATTERN})\s*([-+*/])\s*({PERCENT_NUMBER_PATTERN})")
#: A query that writes a percentage ("15%", "25 percent", "5 per cent"): its operands may carry ``%``.
_PERCENT = re.compile(r"%|\bper\s*cent\b", re.IGNORECASE)


def operand_pattern(query: str) -> str:
    """An operand as the decoder may write it: a number signed only where the query signs it
    (:func:`~.vocabulary.number_pattern`), with a percent sign where the query writes a
    percentage ("25 percent of 6999": ``25% * 6999``)."""
    number = number_pattern(query)
    return f"{number}%?" if _PERCENT.search(query) else number

_GENERIC = Split(
    "templates",
    templates(
        "arith:train:",
        [
            "{a} {sym} {b}",
            "What is {a} {sym} {b}?",
            "what is {a} {sym} {b}",
            "Calculate {a} {sym} {b}",
            "Compute {a} {sym} {b}.",
            "What's {a} {sym} {b}?",
            "{a}{sym}{b}",
            "Solve {a} {sym} {b}",
            "How much is {a} {sym} {b}?",
            "{a} {sym} {b} = ?",
        ],
    ),
    templates(
        "arith:heldout:",
        [
            "Quick question: what does {a} {sym} {b} equal?",
            "Evaluate {a} {sym} {b} for me",
            "Can you work out {a} {sym} {b}?",
            "I need the value of {a} {sym} {b}.",
            "{a} {sym} {b} equals what",
            "Tell me the result of {a} {sym} {b}!",
        ],
    ),
)

# Held-out writes 4-5 digit integers and numbers with two decimals; every such integer is a
# held-out value, so train brackets those lengths with 6-digit integers and gets two decimals from
# 4-digit integer parts (never a held-out value either).
_WEIGHTS_TRAIN = (("int:0-999", 8), ("dec1:0-99", 2), ("neg:int:1-999", 1),
                  ("int:100000-999999", 2), ("dec2:1000-9999", 1), ("neg:dec1:0-99", 1))
_WEIGHTS_HELDOUT = (("int:1000-99999", 4), ("dec2:0-999", 2), ("neg:dec2:0-999", 1))
_NUMBERS = Split(
    "numbers",
    tuple(name for name, _ in _WEIGHTS_TRAIN) + ("exact:1-31",),
    tuple(name for name, _ in _WEIGHTS_HELDOUT) + ("exact:11-999",),
)


def _draw(rng: random.Random, kind: str) -> str:
    """A number of range ``kind``: ``int:LO-HI``, ``dec1:LO-HI`` / ``dec2:LO-HI`` (integer part
    in LO-HI, one or two decimals, the last never 0), or ``neg:<kind>``."""
    if kind.startswith("neg:"):
        return "-" + _draw(rng, kind[4:])
    form, _, bounds = kind.partition(":")
    low, _, high = bounds.partition("-")
    if form not in ("int", "dec1", "dec2") or not low.isdigit() or not high.isdigit():
        raise ValueError(kind)
    whole = str(rng.randint(int(low), int(high)))
    if form == "int":
        return whole
    decimals = "".join(str(rng.randint(0, 9)) for _ in range(int(form[3]) - 1))
    return f"{whole}.{decimals}{rng.randint(1, 9)}"


#: Percentages as train queries write them ("25 percent of 6999", "12.5% of 80"): never a held-out
#: number (held-out writes 4-5 digit integers and two decimals).
_PERCENTS = (("int:1-100", 8), ("dec1:0-99", 1))


def draw_number(rng: random.Random, split: str) -> tuple[str, str]:
    """A number written as it appears in a spec, and its range id."""
    weights = _WEIGHTS_HELDOUT if split == "heldout" else _WEIGHTS_TRAIN
    kind = rng.choices([name for name, _ in weights], [w for _, w in weights])[0]
    return _draw(rng, kind), kind


class ArithmeticExpert(Expert):
    """``<num> <op> <num>`` where ``op`` must be this expert's :attr:`symbol`."""

    symbol: ClassVar[str]
    word_templates: ClassVar[Split[Template]]
    heldout_symbols: ClassVar[tuple[str, ...]] = ()
    #: Templates whose first operand is a percentage (``{a}`` is its number, the spec writes
    #: ``{a}%``), drawn with :attr:`percent_rate`; a split without any draws none.
    percent_templates: ClassVar[Split[Template] | None] = None
    percent_rate: ClassVar[float] = 0.0

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
        number = operand_pattern(query)
        return copy_vocabulary(query, pattern=rf"{number}\s*{re.escape(self.symbol)}\s*{number}", needs_number=True,
                               computes=True)

    def _operands(self, rng: random.Random, split: str) -> tuple[str, str, str]:
        a, kind_a = draw_number(rng, split)
        b, kind_b = draw_number(rng, split)
        return a, b, kind_a if kind_a == kind_b else f"{kind_a}|{kind_b}"

    def sample_example(self, rng: random.Random, split: str) -> Example:
        if self.percent_templates and self.percent_templates.items(split) and rng.random() < self.percent_rate:
            return self._percent_example(rng, split)
        a, b, numbers = self._operands(rng, split)
        pool = _GENERIC.items(split) + self.word_templates.items(split)
        template = rng.choice(pool)
        symbols = (self.symbol,) + (self.heldout_symbols if split == "heldout" else ())
        query = template.fill(a=a, b=b, sym=rng.choice(symbols))
        spec = f"{a} {self.symbol} {b}"
        tags = (f"template:{template.id}", f"numbers:{numbers}")
        return Example(query, self.name, spec, self.execute(spec), tags)

    def _percent_example(self, rng: random.Random, split: str) -> Example:
        kind = rng.choices([name for name, _ in _PERCENTS], [w for _, w in _PERCENTS])[0]
        a = _draw(rng, kind)
        b, kind_b = draw_number(rng, split)
        template = self.percent_templates.choice(rng, split)
        if "$" in template.text and b.startswith("-"):
            b, kind_b = b[1:], kind_b.removeprefix("neg:")  # "$-993" is no amount anyone writes
        spec = f"{a}% {self.symbol} {b}"
        tags = (f"template:{template.id}", f"numbers:pct:{kind}|{kind_b}", "percent")
        return Example(template.fill(a=a, b=b), self.name, spec, self.execute(spec), tags)

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        ids = pool_ids([_NUMBERS], split)
        ids["templates"] = _GENERIC.ids(split) | self.word_templates.ids(split)
        if self.percent_templates:
            ids["templates"] |= self.percent_templates.ids(split)
        return ids


class MultiplyExpert(ArithmeticExpert):
    name = "multiply"
    symbol = "*"
    description = "multiply two numbers: 'multiply: 256 * 4'"
    system_prompt_example = ("256 * 4", "256 * 4")
    heldout_symbols = ("×",)
    calibration_prompts = (
        "256 * 4", "What is 12 times 7?", "Multiply 35 by 3", "What is the product of 9 and 8?",
        "Calculate 15 * 15", "How much is 6 times 4?", "43 * 2", "What's 11 * 11?",
        "multiply 125 by 8", "Compute 72 * 3.5", "What is 19 times 21?",
    )
    few_shot_specs = (("256 * 4", "256 * 4"), ("What is 12 times 7?", "12 * 7"),
                        ("Multiply 3.5 by 4", "3.5 * 4"))
    word_templates = Split(
        "templates",
        templates("multiply:train:", [
            "{a} times {b}", "What is {a} times {b}?", "Multiply {a} by {b}", "multiply {a} by {b}.",
            "What is the product of {a} and {b}?", "How much is {a} times {b}?", "{a} x {b}",
            "product of {a} and {b}",
        ]),
        templates("multiply:heldout:", [
            "{a} multiplied by {b}", "What do you get when you multiply {a} and {b}?",
            "Find {a} times {b}, please", "If I multiply {a} with {b}, what's the result?",
            "{a} × {b}",
        ]),
    )
    # "25 percent of 6999" is ``25% * 6999``: the percentage copied as written, converted by the
    # expert. Train only (held-out keeps its number ranges and templates).
    percent_rate = 0.2
    percent_templates = Split(
        "templates",
        templates("multiply:train:percent:", [
            "What is {a}% of {b}?", "what is {a} percent of {b}", "{a}% of {b}", "{a} percent of {b}",
            "Calculate {a}% of {b}", "How much is {a} percent of {b}?", "What's {a}% of {b}?",
            "Find {a} percent of {b}", "What is {a}% of ${b}?", "tell me what {a} percent of {b} is",
        ]),
        (),
    )


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
    word_templates = Split(
        "templates",
        templates("add:train:", [
            "{a} plus {b}", "What is {a} plus {b}?", "Add {a} and {b}", "add {a} and {b}.",
            "What is the sum of {a} and {b}?", "sum of {a} and {b}", "How much is {a} plus {b}?",
            "{a} and {b} added together",
        ]),
        templates("add:heldout:", [
            "What do {a} and {b} add up to?", "Find the total of {a} and {b}",
            "Increase {a} by {b}", "{a} combined with {b} makes how much?",
            "{a} + {b}, what is the total?",
        ]),
    )


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
    word_templates = Split(
        "templates",
        templates("subtract:train:", [
            "{a} minus {b}", "What is {a} minus {b}?", "Subtract {b} from {a}", "subtract {b} from {a}.",
            "What is {a} take away {b}?", "take {b} away from {a}",
            "What's the difference between {a} and {b}?", "{a} less {b}",
        ]),
        templates("subtract:heldout:", [
            "What is {a} decreased by {b}?", "Deduct {b} from {a}",
            "How much is left if you remove {b} from {a}?", "{a} reduced by {b} gives what?",
            "Start at {a} and go down by {b}",
        ]),
    )


class DivideExpert(ArithmeticExpert):
    name = "divide"
    symbol = "/"
    description = "divide two numbers: 'divide: 72 / 9'"
    heldout_symbols = ("÷",)
    calibration_prompts = (
        "72 / 9", "What is 144 divided by 12?", "Divide 100 by 4", "Calculate 81 / 3",
        "How much is 56 divided by 7?", "What is the quotient of 90 and 6?", "1 / 3",
        "divide 7.5 by 2.5", "What's 1000 / 8?", "How many times does 6 go into 42?", "Compute 45 / 9",
    )
    few_shot_specs = (("72 / 9", "72 / 9"), ("What is 144 divided by 12?", "144 / 12"),
                        ("Divide 100 by 8", "100 / 8"))
    word_templates = Split(
        "templates",
        templates("divide:train:", [
            "{a} divided by {b}", "What is {a} divided by {b}?", "Divide {a} by {b}", "divide {a} by {b}.",
            "What is the quotient of {a} and {b}?", "How many times does {b} go into {a}?",
            "{a} over {b}", "How much is {a} divided by {b}?",
            # Operator words are shared vocabulary, templates are not (as for word-problem verbs): with
            # "ratio" only in a held-out template, every held-out ratio query went to multiply.
            "Find the ratio between {a} and {b}",
        ]),
        templates("divide:heldout:", [
            "What's {a} split {b} ways?", "How much is {a} shared equally among {b}?",
            "What is the ratio of {a} to {b}?", "Find {a} divided into {b} equal parts",
            "{a} ÷ {b}",
        ]),
    )

    def _operands(self, rng: random.Random, split: str) -> tuple[str, str, str]:
        if rng.random() < 0.5:
            low, high = (11, 999) if split == "heldout" else (1, 31)
            b, quotient = rng.randint(low, high), rng.randint(low, high)
            return str(b * quotient), str(b), f"exact:{low}-{high}"
        a, b, numbers = super()._operands(rng, split)
        while parse_number(b) == 0:
            b, _ = draw_number(rng, split)
        return a, b, numbers
