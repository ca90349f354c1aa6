"""MAWPS + ASDiv-A word problems as word_problem examples, for training.

The file (``data/svamp/mawps-asdiv-a_train.csv``, the training set of the SVAMP
protocol) writes each question with placeholders ``number0 ...``, their values
(``Numbers``), a prefix equation over them and the answer. A query is the
question with each placeholder replaced by its number as a person writes it
(:func:`corpora.text.number_form`), detokenized; the spec is the equation in the
word_problem grammar, checked to execute to the file's answer.

A row is dropped (and counted by reason, :func:`conversion`) when its answer is
not what its equation computes (:data:`ANSWER_ERRORS`, checked), when its
equation uses a constant the query does not write (``* number0 0.01`` of a
percentage, ``12`` months of a year), when its query is an SVAMP query (SVAMP
is for evaluation only), or when its query repeats an earlier row's. ``dev`` is
about 10% of the rest, chosen by a stable hash of the query, so failures can be
studied without touching evaluation sets.

``examples("train")`` is what training mixes in; ``examples("dev")`` is held out.
Tags: ``source:mawps``, ``id:<row>`` (0-based data row of the CSV), ``split:<split>``.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.numbers import format_number

from . import data_text
from .equations import EquationError, checked_spec, parse_prefix, stable_share, unwritten_numbers
from .text import detokenize, number_form

PATH = ("svamp", "mawps-asdiv-a_train.csv")
SPLITS = ("train", "dev")
DEV_SHARE = 0.1
_DEV_SALT = "mawps-asdiv-a:dev"
SOURCE_TAG = "source:mawps"

#: Why a row was dropped.
CONSTANT = "constant not written in the query"
IN_SVAMP = "query is an SVAMP query"
WRONG_ANSWER = "answer disagrees with the equation"
DUPLICATE = "query repeats an earlier row"

#: Rows whose answer is not what their equation computes (the conversion checks that
#: these, and only these, disagree): rounded answers, and a few wrong answers or equations.
ANSWER_ERRORS = {
    82: "2.99 / 12 is 0.249167; the file rounds to 0.25",
    121: "percentage rounded to 69.4",
    286: "40 / 7 is 5.714286; the file says 5",
    401: "0.3333 / 2 rounded to 0.165",
    596: "34 * 4 is 136; the file says 134",
    630: "0.6667 * 0.5 rounded to 0.3333",
    766: "rounded to 6.45",
    834: "rounded to 21.3333",
    1118: "the equation averages the speeds; the answer is the harmonic mean",
    1224: "0.6667 for 2/3 gives 8.99955; the file says 9",
    1360: "1222 - 513 is 709; the file says 208",
    1436: "the equation leaves out the movie bought for $13.95",
    1795: "rounded to 83.33",
    1821: "the equation divides by 5, not by the 0.05 of a nickel",
    1848: "the equation divides 700 by 7; the answer divides by 100",
    1913: "percentage rounded to 41",
    2367: "rounded to 3.333",
}


@dataclass(frozen=True)
class Conversion:
    """The converted file: examples per split, and the row ids dropped per reason."""

    rows: int
    splits: Mapping[str, tuple[Example, ...]]
    dropped: Mapping[str, tuple[int, ...]]

    def counts(self) -> dict[str, int]:
        """Rows read, kept per split, dropped per reason."""
        return {"rows": self.rows, **{split: len(e) for split, e in self.splits.items()},
                **{f"dropped: {reason}": len(ids) for reason, ids in self.dropped.items()}}


@functools.lru_cache(maxsize=1)
def rows() -> tuple[dict[str, str], ...]:
    """The CSV's rows (``Question, Numbers, Equation, Answer, ...``), in file order."""
    return tuple(csv.DictReader(io.StringIO(data_text(*PATH), newline="")))


def convert_row(row: dict[str, str], index: int) -> tuple[Example, list[str]]:
    """The example of one CSV row and the spec numbers its query does not write
    (the row is usable only if there are none). :class:`EquationError` if the
    equation does not parse or its spec does not execute to the row's answer."""
    numbers = row["Numbers"].split()
    forms = [number_form(token) for token in numbers]
    query = row["Question"]
    # Longest placeholder first: "number10" is not "number1" followed by "0".
    for k in sorted(range(len(forms)), key=lambda k: -len(str(k))):
        query = query.replace(f"number{k}", forms[k][0])
    query = detokenize(query)

    def leaf(token: str):
        if token.startswith("number"):
            k = int(token.removeprefix("number"))
            if k >= len(forms):
                raise EquationError(f"row {index}: {token} but only {len(forms)} numbers")
            return forms[k][1]
        return number_form(token)[1]

    expression = parse_prefix(row["Equation"], leaf)
    answer = float(row["Answer"])
    spec = checked_spec(expression, answer, f"mawps row {index}")
    example = Example(query, "word_problem", spec, format_number(row["Answer"]), (SOURCE_TAG, f"id:{index}"))
    return example, unwritten_numbers(expression, query)


def split_of(query: str) -> str:
    """``"dev"`` for about :data:`DEV_SHARE` of queries, ``"train"`` for the
    rest, fixed by the query's text alone."""
    return "dev" if stable_share(query, _DEV_SALT) < DEV_SHARE else "train"


@functools.lru_cache(maxsize=1)
def conversion() -> Conversion:
    """Convert every row (cached); raises :class:`EquationError` if any kept
    row's spec does not execute to its answer."""
    from .svamp import queries as svamp_queries

    evaluation = svamp_queries()
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    dropped: dict[str, list[int]] = {WRONG_ANSWER: [], CONSTANT: [], IN_SVAMP: [], DUPLICATE: []}
    seen: set[str] = set()
    table = rows()
    for index, row in enumerate(table):
        try:
            example, unwritten = convert_row(row, index)
        except EquationError:
            if index not in ANSWER_ERRORS:
                raise
            dropped[WRONG_ANSWER].append(index)
            continue
        if index in ANSWER_ERRORS:
            raise EquationError(f"mawps row {index} is listed in ANSWER_ERRORS but converts to its answer")
        if unwritten:
            dropped[CONSTANT].append(index)
        elif example.query in evaluation:
            dropped[IN_SVAMP].append(index)
        elif example.query in seen:
            # The file repeats 170 queries, two with another answer (rows 786 and 1551, both wrong).
            dropped[DUPLICATE].append(index)
        else:
            seen.add(example.query)
            split = split_of(example.query)
            splits[split].append(Example(example.query, example.expert, example.spec, example.answer,
                                         example.tags + (f"split:{split}",)))
    return Conversion(len(table), MappingProxyType({k: tuple(v) for k, v in splits.items()}),
                      MappingProxyType({k: tuple(v) for k, v in dropped.items()}))


def examples(split: str = "train") -> list[Example]:
    """The converted examples of ``split`` (``"train"`` or ``"dev"``), in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown MAWPS split {split!r}; expected one of {SPLITS}")
    return list(conversion().splits[split])
