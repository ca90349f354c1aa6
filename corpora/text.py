"""Text of the public word problems: numbers as a person writes them, detokenizing.

The corpora were tokenized for older models (``Bryan 's``, ``did n't``,
``$ 4``, ``part - time``) and store numbers as Python floats (``56.0``,
``0.16666666666666666``). A query shown to the router reads like a person wrote it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from lazarus_cot_router.experts.word_problem import Expression, Operation

#: A number as a query writes it: digits, optional decimals, a sign only where no
#: word or digit comes right before it ("-2, -15" but not the "-6" of "5-6").
_WRITTEN_NUMBER = re.compile(r"(?<![\w.])-?[0-9]+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?")
#: More decimals than anyone writes: the float of a fraction (1/6 is 0.16666666666666666).
_REPEATING = re.compile(r"[0-9]+\.[0-9]{10,}")
_FLOAT_WHOLE = re.compile(r"-?[0-9]+\.0")
_FRACTION_DENOMINATORS = 100

_DETOKENIZE = (
    (re.compile(r"``\s*(.*?)\s*''"), r'"\1"'),  # ``quoted'' -> "quoted"
    (re.compile(r"(?<![\w'])'\s*([^'\s][^']*?[\w!?.])\s+'(?![\w'])"), r"'\1'"),  # ' whack a mole ' -> 'whack a mole'
    (re.compile(r"(?<=\ws) '(?= \w)"), "'"),  # las vegas ' high roller -> las vegas' high roller
    (re.compile(r"\b(ca|wo) n't\b", re.IGNORECASE), r"\1n't"),  # ca n't -> can't, wo n't -> won't
    (re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE), r"\1"),  # did n't, Bryan 's
    (re.compile(r"(?<=\w)\s+’\s*(?=s\b)"), "’"),  # Jesse ’ s -> Jesse’s
    (re.compile(r"(?<=[A-Za-z])\s+-\s+(?=[A-Za-z])"), "-"),  # part - time -> part-time
    (re.compile(r"\s+([.,?!;:%)])"), r"\1"),  # no space before punctuation
    (re.compile(r"([$(])\s+"), r"\1"),  # $ 4 -> $4, ( a -> (a
)
#: First words of a question that are lowercased when it continues a clause ("If he had $4, how much ...").
_QUESTION_WORDS = frozenset("how what which who whom whose when where why about together total find".split())


def detokenize(text: str) -> str:
    """``text`` with tokenizer spacing undone (see the module docstring)."""
    text = " ".join(text.split())
    for pattern, replacement in _DETOKENIZE:
        text = pattern.sub(replacement, text)
    return text


def join_question(body: str, question: str) -> str:
    """A body and its question as one query: a sentence after a full stop; a
    clause after a comma, lowercased, where the body stops mid-sentence
    ("If he had $4 at the start" + "How much ..." -> "..., how much ...")."""
    body, question = body.strip(), question.strip()
    if not body or body[-1] in ".?!":
        return f"{body} {question}".strip()
    first = question.split(" ", 1)[0]
    if first.lower() in _QUESTION_WORDS:
        question = first.lower() + question[len(first):]
    return f"{body}, {question}"


def written_numbers(text: str) -> list[str]:
    """The numbers ``text`` writes in digits, as written (``"-2"``, ``"0.5"``;
    ``"1/6"`` writes ``"1"`` and ``"6"``)."""
    return _WRITTEN_NUMBER.findall(text)


def number_form(token: str) -> tuple[str, Expression]:
    """How a person writes the corpus number ``token`` and the spec expression
    for it: ``"56.0"`` is ``56``; ``"0.5"`` stays; the float of a fraction is
    the fraction (``"0.16666666666666666"`` is ``1/6``, spec ``1 /6``;
    ``"3.6666666666666665"`` is ``3 2/3``, spec ``3 +(2 /3)``); anything else
    is kept as written (``"1.00"`` of a price)."""
    if _FLOAT_WHOLE.fullmatch(token):
        whole = token[: -len(".0")]
        return whole, whole
    if _REPEATING.fullmatch(token):
        fraction = Fraction(token).limit_denominator(_FRACTION_DENOMINATORS)
        if fraction.denominator > 1 and abs(float(fraction) - float(token)) < 1e-12:
            whole, rest = divmod(fraction.numerator, fraction.denominator)
            part = Operation("/", str(rest), str(fraction.denominator))
            if not whole:
                return f"{rest}/{fraction.denominator}", part
            return f"{whole} {rest}/{fraction.denominator}", Operation("+", str(whole), part)
    return token, token
