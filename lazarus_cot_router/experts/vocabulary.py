"""The words a spec may be written with, for copy-constrained decoding.

Built-in specs copy the query's own words (numbers, names, places) and add a
few words of their grammar. An expert says so by returning a
:class:`SpecVocabulary` from :meth:`Expert.spec_vocabulary`; the decoder then
only lets the model write those (see ``lazarus_cot_router.constrain``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A word of a spec or query: a run of letters (and ``_``) or a number with its decimals.
WORD = re.compile(r"[^\W\d]+|\d+(?:\.\d+)?")

#: Number words a query may use where the spec writes digits.
NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12",
    "twenty": "20", "hundred": "100", "thousand": "1000",
    "double": "2", "doubles": "2", "doubled": "2", "twice": "2", "half": "2", "halves": "2", "halved": "2",
    "triple": "3", "triples": "3", "tripled": "3", "thrice": "3",
    "quadruple": "4", "quadruples": "4", "quadrupled": "4",
}


def words(text: str) -> list[str]:
    """The case-folded words of ``text``."""
    return [w.casefold() for w in WORD.findall(text)]


@dataclass(frozen=True)
class SpecVocabulary:
    """``mode="copy"``: the spec's words are the query's words (each at most as
    often as the query has it; in the query's own case when ``case_sensitive``)
    or ``keywords`` (any number of times, any case), or the whole spec is one of
    ``phrases`` (say, IANA zone names); ``pattern``, if set, is a regular
    expression the whole spec must match (the expert's grammar; the decoder
    checks prefixes of it with the ``regex`` module's partial matching);
    ``mode="choice"``: the whole spec is one of ``phrases``;
    ``mode="empty"``: the spec is empty;
    ``mode="never"``: the expert cannot take this query (arithmetic on a query
    without a number)."""

    mode: str = "copy"
    keywords: frozenset[str] = frozenset()
    phrases: frozenset[str] = frozenset()
    pattern: str | None = None
    case_sensitive: bool = False
    #: Words copied as if the query wrote them, as often as listed (``"3"`` for "triples").
    implied: tuple[str, ...] = ()

    def __post_init__(self):
        if self.mode not in ("copy", "choice", "empty", "never"):
            raise ValueError(f"unknown spec vocabulary mode {self.mode!r}")
        object.__setattr__(self, "keywords", frozenset(w.casefold() for w in self.keywords))


def number_words_in(query: str) -> list[str]:
    """Digits the query spells out in words ("triples" -> ``3``), once per
    number word, typos of one letter included ("qadruples")."""
    found = []
    for w in words(query):
        if w in NUMBER_WORDS:
            found.append(NUMBER_WORDS[w])
        elif len(w) >= 5:
            found.extend(sorted({digits for word, digits in NUMBER_WORDS.items()
                                 if len(word) >= 5 and _one_edit(w, word)}))
    return found


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one inserted, deleted or replaced
    letter, or two swapped neighbours."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    i = next((i for i, (x, y) in enumerate(zip(short, long)) if x != y), len(short))
    return short[i:] == long[i + 1:]


def copy_vocabulary(query: str, *keywords: str, phrases: frozenset[str] = frozenset(),
                    pattern: str | None = None, case_sensitive: bool = False,
                    needs_number: bool = False) -> SpecVocabulary:
    """Query words plus ``keywords`` plus the digits of its number words (each
    as often as the query spells it); ``mode="never"`` if ``needs_number`` and
    the query has no number at all."""
    spelled = number_words_in(query)
    if needs_number and not spelled and not any(ch.isdigit() for ch in query):
        return SpecVocabulary("never")
    return SpecVocabulary("copy", frozenset(keywords), phrases, pattern, case_sensitive, tuple(spelled))
