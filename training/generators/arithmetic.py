"""Arithmetic queries: ``<num> <op> <num>`` in generic and per-operator wordings.

Each of the four arithmetic experts has a :class:`Wording` (its own templates, held-out
operator symbols, percentage templates); every one also draws the generic templates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lazarus_cot_router.experts.arithmetic import AddExpert, ArithmeticExpert, DivideExpert, MultiplyExpert, SubtractExpert
from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.numbers import parse_number

from .pools import Split, Template, ids_by_kind, templates

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


@dataclass(frozen=True)
class Wording:
    """How queries write one arithmetic expert's operation, besides the generic templates."""

    templates: Split[Template]
    heldout_symbols: tuple[str, ...] = ()
    #: Templates whose first operand is a percentage (``{a}`` is its number, the spec writes
    #: ``{a}%``), drawn with :attr:`percent_rate`; a split without any draws none.
    percent_templates: Split[Template] | None = None
    percent_rate: float = 0.0


WORDINGS: dict[type[ArithmeticExpert], Wording] = {
    MultiplyExpert: Wording(
        Split(
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
        ),
        heldout_symbols=("×",),
        # "25 percent of 6999" is ``25% * 6999``: the percentage copied as written, converted by the
        # expert. Train only (held-out keeps its number ranges and templates).
        percent_templates=Split(
            "templates",
            templates("multiply:train:percent:", [
                "What is {a}% of {b}?", "what is {a} percent of {b}", "{a}% of {b}", "{a} percent of {b}",
                "Calculate {a}% of {b}", "How much is {a} percent of {b}?", "What's {a}% of {b}?",
                "Find {a} percent of {b}", "What is {a}% of ${b}?", "tell me what {a} percent of {b} is",
            ]),
            (),
        ),
        percent_rate=0.2,
    ),
    AddExpert: Wording(Split(
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
    )),
    SubtractExpert: Wording(Split(
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
    )),
    DivideExpert: Wording(
        Split(
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
        ),
        heldout_symbols=("÷",),
    ),
}


def wording(expert: ArithmeticExpert) -> Wording:
    """The :class:`Wording` of ``expert``'s built-in class (a subclass shares its parent's)."""
    return next(words for cls, words in WORDINGS.items() if isinstance(expert, cls))


def _operands(expert: ArithmeticExpert, rng: random.Random, split: str) -> tuple[str, str, str]:
    """``(a, b, range ids)``."""
    if isinstance(expert, DivideExpert):
        return _divide_operands(rng, split)
    return _two_numbers(rng, split)


def _two_numbers(rng: random.Random, split: str) -> tuple[str, str, str]:
    a, kind_a = draw_number(rng, split)
    b, kind_b = draw_number(rng, split)
    return a, b, kind_a if kind_a == kind_b else f"{kind_a}|{kind_b}"


def _divide_operands(rng: random.Random, split: str) -> tuple[str, str, str]:
    """Half exact quotients, half any two numbers but a zero divisor."""
    if rng.random() < 0.5:
        low, high = (11, 999) if split == "heldout" else (1, 31)
        b, quotient = rng.randint(low, high), rng.randint(low, high)
        return str(b * quotient), str(b), f"exact:{low}-{high}"
    a, b, numbers = _two_numbers(rng, split)
    while parse_number(b) == 0:
        b, _ = draw_number(rng, split)
    return a, b, numbers


def sample_example(expert: ArithmeticExpert, rng: random.Random, split: str) -> Example:
    """One query of ``expert``'s operation for ``split``."""
    words = wording(expert)
    if words.percent_templates and words.percent_templates.items(split) and rng.random() < words.percent_rate:
        return _percent_example(expert, words.percent_templates, rng, split)
    a, b, numbers = _operands(expert, rng, split)
    pool = _GENERIC.items(split) + words.templates.items(split)
    template = rng.choice(pool)
    symbols = (expert.symbol,) + (words.heldout_symbols if split == "heldout" else ())
    query = template.fill(a=a, b=b, sym=rng.choice(symbols))
    spec = f"{a} {expert.symbol} {b}"
    tags = (f"template:{template.id}", f"numbers:{numbers}")
    return Example(query, expert.name, spec, expert.execute(spec), tags)


def _percent_example(expert: ArithmeticExpert, percent_templates: Split[Template], rng: random.Random,
                     split: str) -> Example:
    kind = rng.choices([name for name, _ in _PERCENTS], [w for _, w in _PERCENTS])[0]
    a = _draw(rng, kind)
    b, kind_b = draw_number(rng, split)
    template = percent_templates.choice(rng, split)
    if "$" in template.text and b.startswith("-"):
        b, kind_b = b[1:], kind_b.removeprefix("neg:")  # "$-993" is no amount anyone writes
    spec = f"{a}% {expert.symbol} {b}"
    tags = (f"template:{template.id}", f"numbers:pct:{kind}|{kind_b}", "percent")
    return Example(template.fill(a=a, b=b), expert.name, spec, expert.execute(spec), tags)


def pool_ids(expert: ArithmeticExpert, split: str) -> dict[str, frozenset[str]]:
    """The ids of the pools :func:`sample_example` draws from for ``split``, by kind."""
    words = wording(expert)
    ids = ids_by_kind([_NUMBERS], split)
    ids["templates"] = _GENERIC.ids(split) | words.templates.ids(split)
    if words.percent_templates:
        ids["templates"] |= words.percent_templates.ids(split)
    return ids
