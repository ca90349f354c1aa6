"""Requests for a computation no built-in expert does: chat (passthrough) training examples.

The arithmetic experts take one binary operation and word_problem a story; a bare request for
anything else must pass through, not be rewritten into an operation that exists ("2**10" as
``2 * 10``). The kinds below are those of the CLINC150 training split's ``calculator`` queries
that no expert can write (``kind:calculator_other``: chains, square roots, powers, factorials,
antilogs, percent off and tips, fractions of fractions, a plea for help with math) and some of
the operations :data:`~lazarus_cot_router.experts.vocabulary.UNSUPPORTED_OPERATIONS` names
(powers, roots, logarithms, factorials, modulo, scientific notation). Numbers come from the
arithmetic generator's training ranges. Training data only: :func:`examples` draws no held-out
split, so the generated held-out split is unchanged by it.
"""

from __future__ import annotations

import random

from lazarus_cot_router.experts.base import Example

from .arithmetic import draw_number
from .variations import vary_example

SOURCE_TAG = "source:unsupported"

#: How a request opens and closes around its expression (CLINC150 train's calculator queries).
LEADS = ("", "", "what is ", "What's ", "whats ", "Calculate ", "calculate ", "Compute ", "Evaluate ",
         "Work out ", "How much is ", "can you tell me what ", "Could you tell me what ", "Solve ",
         "I need to know ", "please compute ", "Tell me ")
TAILS = ("", "", "?", " please", "? thanks", " =", " = ?", " for me")

_OPERATORS = {"+": ("+", "plus"), "-": ("-", "minus"), "*": ("*", "x", "times", "multiplied by"),
              "/": ("/", "divided by", "over")}
_ORDINALS = {2: "2nd", 3: "3rd", 4: "4th", 5: "5th", 6: "6th", 7: "7th", 8: "8th", 9: "9th", 10: "10th", 12: "12th"}
_ROOTS = ("the square root of {a}", "square root of {a}", "the cube root of {a}", "sqrt({a})", "sqrt {a}",
          "√{a}", "the {ord} root of {a}")
_POWERS = ("{a} to the {ord} power", "{a} to the power of {n}", "{a}^{n}", "{a} ^ {n}", "{a}**{n}",
           "{a} squared", "{a} cubed", "raise {a} to the {ord} power", "{a} raised to the power {n}",
           "{a} to the power {n} {op} {b}")
_FACTORIALS = ("{n} factorial", "{n}!", "the factorial of {n}", "factorial {n}", "{n}! {op} {b}")
_LOGARITHMS = ("the log of {a}", "log {a}", "log({a})", "the antilog of {a}", "log base {n} of {a}",
               "ln({a})", "the natural log of {a}", "the logarithm of {a}", "log10({a})")
_MODULO = ("{a} mod {b}", "{a} % {b}", "{a} modulo {b}", "{a}%{b}", "{a} modulus {b}")
_SCIENTIFIC = ("{m}e{k}", "{m}e{k} {op} {b}", "{b} {op} {m}e{k}", "{m}e-{k} {op} {b}", "{m}E{k} {op} {b}")
_PERCENT_COMPOUND = ("{p}% off {a}", "{p} percent off of {a} dollars", "a {p} percent tip on {a} dollars",
                     "a {p}% tip on ${a}", "${a} with {p}% off", "{a} after a {p}% discount",
                     "{a} plus {p}% tax", "{a} increased by {p}%", "{a} minus {p} percent")
_LISTED = ("the sum of {numbers}", "the product of {numbers}", "the total of {numbers}")
_FRACTIONS = ("{f} of {g}", "{f} times {g}", "{f} x {g}", "{f} of {a}", "{fw} of {gw}", "{fw} times {gw}")
_FRACTION_WORDS = ("one half", "a third", "two thirds", "one quarter", "three quarters", "one fifth",
                   "2 fifths", "one sixth", "five eighths", "a tenth", "1 fifth", "seven tenths")
_HELP = ("can you help me with a math problem", "I need help with my math homework", "can you do algebra",
         "help me solve an equation", "can you do calculus", "will you check my math",
         "I have a tricky arithmetic question", "are you good at math", "help me with some numbers")

#: Kinds and their shares. The runtime passes through most powers, roots, factorials, logarithms,
#: modulo, scientific notation and chains written with operators before the model sees them
#: (:func:`~lazarus_cot_router.experts.vocabulary.unsupported_operation`); chains written as lists,
#: compound percentages, fractions and pleas for help are the model's to recognize.
KIND_WEIGHTS = {"chain": 3, "percent_compound": 2, "fraction": 2, "help": 1, "power": 1, "root": 1,
                "factorial": 1, "logarithm": 1, "modulo": 1, "scientific": 1}
KINDS = tuple(KIND_WEIGHTS)
#: The frames of the kinds written as one expression with slots (see :func:`_fill`).
_FRAMES = {"power": _POWERS, "root": _ROOTS, "factorial": _FACTORIALS, "logarithm": _LOGARITHMS, "modulo": _MODULO,
           "scientific": _SCIENTIFIC, "percent_compound": _PERCENT_COMPOUND, "fraction": _FRACTIONS}


def _number(rng: random.Random) -> str:
    return draw_number(rng, "train")[0]


def _small(rng: random.Random, low: int = 2, high: int = 12) -> int:
    return rng.randint(low, high)


def _operator(rng: random.Random) -> str:
    return rng.choice(_OPERATORS[rng.choice(tuple(_OPERATORS))])


def _chain(rng: random.Random) -> str:
    count = rng.choice((3, 3, 3, 4, 4, 5))
    if rng.random() < 0.25:  # "the sum of 3, 7, 9, and 24"
        numbers = [_number(rng) for _ in range(count)]
        last = rng.choice((" and ", ", and ", " and "))
        return rng.choice(_LISTED).format(numbers=", ".join(numbers[:-1]) + last + numbers[-1])
    words = rng.random() < 0.4
    parts = [_number(rng)]
    for _ in range(count - 1):
        symbol = rng.choice(tuple(_OPERATORS))
        written = rng.choice([w for w in _OPERATORS[symbol] if (len(w) > 1) == words] or _OPERATORS[symbol])
        parts += [written, _number(rng)]
    if not words and rng.random() < 0.3:  # "(a + b) * c"
        parts[0], parts[2] = "(" + parts[0], parts[2] + ")"
    return " ".join(parts)


def _fill(rng: random.Random, frames: tuple[str, ...]) -> str:
    n = _small(rng)
    return rng.choice(frames).format(
        a=_number(rng).lstrip("-"), b=_number(rng), n=n, ord=_ORDINALS.get(n, f"{n}th"), op=_operator(rng),
        m=rng.choice((str(_small(rng, 1, 9)), f"{_small(rng, 1, 9)}.{_small(rng, 1, 9)}")), k=_small(rng, 2, 9),
        p=rng.choice((str(_small(rng, 5, 60)), f"{_small(rng, 1, 20)}.5")),
        f=f"{_small(rng, 1, 8)}/{_small(rng, 2, 9)}", g=f"{_small(rng, 1, 8)}/{_small(rng, 2, 9)}",
        fw=rng.choice(_FRACTION_WORDS), gw=rng.choice(_FRACTION_WORDS))


def compose(rng: random.Random, kind: str) -> str:
    """One request of ``kind`` (one of :data:`KINDS`)."""
    if kind == "help":
        return rng.choice(_HELP)
    if kind == "chain":
        expression = _chain(rng)
    elif kind in _FRAMES:
        expression = _fill(rng, _FRAMES[kind])
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    lead = rng.choice(LEADS)
    if lead.lower().endswith("what "):
        return f"{lead}{expression} is{rng.choice(('', '?', ', please'))}"
    text = lead + expression + rng.choice(TAILS)
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def examples(n: int, seed: int = 0) -> list[Example]:
    """``n`` distinct training requests, kinds drawn by :data:`KIND_WEIGHTS`, each with the generic variations of
    :func:`~training.generators.variations.vary_example` (an instruction, politeness, casing)."""
    rng = random.Random(f"lazarus-cot-router:unsupported:{seed}")
    drawn: list[Example] = []
    seen: set[str] = set()
    attempts = 0
    while len(drawn) < n:
        attempts += 1
        if attempts > 50 * n + 100:
            raise ValueError(f"could draw only {len(drawn)} distinct requests of {n}")
        kind = rng.choices(KINDS, tuple(KIND_WEIGHTS.values()))[0]
        example = vary_example(Example(compose(rng, kind), "chat", "", None, (SOURCE_TAG, f"kind:{kind}")), rng, "train")
        if example.query not in seen:
            seen.add(example.query)
            drawn.append(example)
    return drawn
