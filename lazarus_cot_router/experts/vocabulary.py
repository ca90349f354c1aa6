"""The words a spec may be written with, for copy-constrained decoding.

Built-in specs copy the query's own words (numbers, names, places) and add a
few words of their grammar. An expert says so by returning a
:class:`SpecVocabulary` from :meth:`Expert.spec_vocabulary`; the decoder then
only lets the model write those (see ``lazarus_cot_router.constrain``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

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


#: Number words that are a step of a word problem on their own ("triples" is ``*3``, "halves"
#: ``/2``), unlike "one" in "sells every remaining one": the word -> the step's operator.
STEP_WORDS = {w: "/" if w.startswith("hal") else "*" for w in NUMBER_WORDS
              if w.startswith(("doubl", "tripl", "quadrupl", "hal", "twice", "thrice"))}
#: A number followed by one of these is a rate, a word problem's multiplier ("sells the rest for
#: $11 each", "at $14 apiece"): the 135M router wrote ``-11`` for it.
_RATE_WORDS = frozenset({"each", "apiece"})
#: A number after one of these is a divisor ("splits them equally among 9 friends", "packs them
#: into 7 bags"): the router wrote ``-7`` for it.
_SHARE_WORDS = frozenset({"among", "amongst", "between", "into"})
#: "one" after one of these is a pronoun ("sells every remaining one"), no number.
_PRONOUN_ONE_AFTER = frozenset({"remaining", "every", "each", "this", "that", "which", "any", "no"})
#: A number followed by one of these sizes the answer ("in under 20 words"); it is not the task's.
_ANSWER_SIZES = frozenset("word words sentence sentences line lines character characters bullet bullets "
                          "point points paragraph paragraphs".split())
#: English words one letter away from a number or answer-size word, never read as its typo
#: ("right" is not "eight", "there" not "three", "5 pints" not "5 points"): every such word of
#: Debian's wamerican list, less the plurals and forms that mean the number ("dozens", "halve");
#: ``bench/real_words.py`` rebuilds it.
_REAL_WORDS = frozenset("""
    alines ballet ballets bight billet billets bulled calved calves cords cozen dines doable doublet
    doublets doubted doyen dozed dozes eighth eighty fight fines fords gullet gullets haled hales
    haloed haloes halted haves height hines ines joint joints keven lanes liens lies light likes limes
    lined linen linens liner liners links lints linus lives lords might mines mullet mullets night
    nines paint paints pines pint pints pointy print prints pullet pullets quadruped quadruplet
    quadruplets right salved salves semen sentenced sentience sever severn sight steven swords there
    thrace threw thrive throe tight tines trialed trice trifle trifled trifles trilled tripe triplet
    triplets trippe tripped twine tyree valved valves vines wards weight wight wines woods wordy works
    worlds worms
""".split())
#: Where a query's sentences (and appended instructions) break.
_SENTENCE_BREAK = re.compile(r"[.!?;](?=\s|$)|\n")
#: A hyphen and a letter after a word: the word starts a compound ("Double-check").
_COMPOUND_REST = re.compile(r"-[^\W\d_]")


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
    #: ``"all"``: the spec may end only once it has used every number of each
    #: sentence of the query it takes a number from; ``"in_order"``: the same,
    #: and the spec's numbers follow the query's order from wherever it starts,
    #: with step words ("triples") counted as numbers. ``None``: numbers are free.
    numbers: str | None = None
    #: With ``numbers="all"``: a mark after which the grammar takes no number but ``late_numbers``
    #: (the schedule's ``|``, then only a start hour); the spec writes it only once it has used
    #: every other number the rule wants (a router that wrote ``|`` a task early had to drop it).
    numbers_mark: str | None = None
    late_numbers: frozenset[str] = frozenset()
    #: With ``numbers="in_order"``: ``(word, operator)`` pairs; a number right after the
    #: case-folded word is a step with that operator (the word problem's verbs: "finds 12" is
    #: ``+12``, "lends 9" ``-9``). A number after any other word keeps the model's operator.
    operator_words: frozenset[tuple[str, str]] = frozenset()
    #: Query words the spec may not copy, once per listing, as the query writes them: the words of
    #: a phrase the grammar writes as a keyword ("so nothing overlaps" is ``no_overlap``).
    reserved: tuple[str, ...] = ()
    #: The spec copies the query's words in the query's order; with ``numbers="all"`` and a
    #: ``numbers_mark``, also the numbers before the mark (a schedule lists its tasks as asked),
    #: and a word before the mark is one the query writes nearest the number the spec writes next
    #: (a task's name is the one beside its duration: "Rosa" of "review (1 h), Rosa (2 h)" goes
    #: with 2), nearness counting a clause break (``,`` ``;`` "and") as several words.
    ordered: bool = False

    def __post_init__(self):
        if self.mode not in ("copy", "choice", "empty", "never"):
            raise ValueError(f"unknown spec vocabulary mode {self.mode!r}")
        if self.numbers not in (None, "all", "in_order"):
            raise ValueError(f"unknown numbers rule {self.numbers!r}")
        object.__setattr__(self, "keywords", frozenset(w.casefold() for w in self.keywords))


def number_words_in(query: str) -> list[str]:
    """Digits the query spells out in words ("triples" -> ``3``), once per
    number word, typos of one letter included ("qadruples")."""
    return [digits for w in words(query) for _, digits in _spelled(w)]


def _spelled(word: str) -> list[tuple[str, str]]:
    """``(number word, digits)`` that the case-folded ``word`` is, or is one typo away from."""
    if word in NUMBER_WORDS:
        return [(word, NUMBER_WORDS[word])]
    if len(word) < 5 or word in _REAL_WORDS:
        return []
    return sorted({digits: (w, digits) for w, digits in NUMBER_WORDS.items() if len(w) >= 5 and _one_edit(word, w)}.values())


@dataclass(frozen=True)
class QueryNumber:
    """A number the query writes, in digits or as a word."""

    spellings: frozenset[str]  # as a spec writes it: "622.06"; "3" for "triples"
    required: bool  # whether a spec that uses its sentence must use it
    sentence: int
    op: str | None = None  # the operator a step word, rate or share comes with ("*" for "triples", "$9 each")
    after: str = ""  # the word that follows it, case-folded ("hours" in "2 hours")
    sizes_answer: bool = False  # "20" in "in under 20 words" (or "20 wrds")
    position: int = 0  # its index among the query's words (``WORD`` matches)


def sizes_answer(word: str) -> bool:
    """Whether a number followed by the case-folded ``word`` sizes the answer,
    typos of one letter in the longer size words included ("20 wrds"; not
    "wine" for "line")."""
    return word in _ANSWER_SIZES or (len(word) >= 4 and word not in _REAL_WORDS and any(len(size) >= 5 and _one_edit(word, size) for size in _ANSWER_SIZES))


def query_numbers(query: str, step_words: bool = False,
                  operator_words: Mapping[str, str] | None = None) -> tuple[QueryNumber, ...]:
    """The query's numbers in order. Digits are required, number words not
    ("one" in "every remaining one"), except ``STEP_WORDS`` if ``step_words``
    (which then also carry their operator) that do not start a compound
    ("Double-check your answer"); nor is a number that sizes the answer ("in
    under 20 words"); "one" as a pronoun ("every remaining one") is no number.
    With ``step_words``, a rate ("$11 each") carries ``*``, a share ("among 9") ``/``, and a
    number right after a word of ``operator_words`` that word's operator."""
    operator_words = operator_words or {}
    breaks = [m.start() for m in _SENTENCE_BREAK.finditer(query)]
    matches = list(WORD.finditer(query))
    found = []
    for i, m in enumerate(matches):
        sentence = sum(b < m.start() for b in breaks)
        before = matches[i - 1].group().casefold() if i else ""
        after = matches[i + 1].group().casefold() if i + 1 < len(matches) else ""
        size = sizes_answer(after)
        if m.group()[0].isdigit():
            op = None
            if step_words and after in _RATE_WORDS:
                op = "*"
            elif step_words and before in _SHARE_WORDS:
                op = "/"
            elif step_words:
                op = operator_words.get(before)
            found.append(QueryNumber(frozenset([m.group()]), not size, sentence, op, after, size, i))
            continue
        if m.group().casefold() == "one" and before in _PRONOUN_ONE_AFTER:
            continue
        spelled = _spelled(m.group().casefold())
        if spelled:
            ops = {STEP_WORDS.get(w) for w, _ in spelled}
            compound = _COMPOUND_REST.match(query, m.end()) is not None
            step = step_words and not size and not compound and None not in ops and len(ops) == 1
            found.append(QueryNumber(frozenset(d for _, d in spelled), step, sentence, ops.pop() if step else None,
                                     after, size, i))
    return tuple(found)


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
                    needs_number: bool = False, numbers: str | None = None, numbers_mark: str | None = None,
                    late_numbers: frozenset[str] = frozenset(),
                    operator_words: Mapping[str, str] | None = None, reserved: tuple[str, ...] = (),
                    ordered: bool = False) -> SpecVocabulary:
    """Query words plus ``keywords`` plus the digits of its number words (each
    as often as the query spells it); ``mode="never"`` if ``needs_number`` and
    the query has no number at all."""
    spelled = number_words_in(query)
    if needs_number and not spelled and not any(ch.isdigit() for ch in query):
        return SpecVocabulary("never")
    return SpecVocabulary("copy", frozenset(keywords), phrases, pattern, case_sensitive, tuple(spelled), numbers,
                          numbers_mark, late_numbers, frozenset((operator_words or {}).items()), tuple(reserved),
                          ordered)
