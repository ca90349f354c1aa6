"""The words a spec may be written with, for copy-constrained decoding.

Built-in specs copy the query's own words (numbers, names, places) and add a
few words of their grammar. An expert says so by returning a
:class:`SpecVocabulary` from :meth:`Expert.spec_vocabulary`; the decoder then
only lets the model write those (see ``lazarus_cot_router.constrain``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from .numbers import one_of

#: A word of a spec or query: a run of letters (and ``_``) or a number with its decimals.
WORD = re.compile(r"[^\W\d]+|\d+(?:\.\d+)?")

#: Number words a query may use where the spec writes digits: "seventeen" is ``17``, and a
#: multiplier's factor ("doubles" ``2``, "halves" ``2``, "triples" ``3``) for the operator the
#: spec writes with it.
CARDINALS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
    "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
    "million": "1000000",
}
NUMBER_WORDS = {
    **CARDINALS, "dozen": "12",
    "double": "2", "doubles": "2", "doubled": "2", "twice": "2", "half": "2", "halves": "2", "halved": "2",
    "triple": "3", "triples": "3", "tripled": "3", "thrice": "3",
    "quadruple": "4", "quadruples": "4", "quadrupled": "4",
}
#: Where a query's sentences (and appended instructions) break.
_SENTENCE_BREAK = re.compile(r"[.!?;](?=\s|$)|\n")


#: Digits grouped by thousands ("54,788", "1,234,567.5"): a spec writes them without the commas.
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)")
#: A number the query writes with its own minus ("-785.75", "−5", "negative 5"; not the "- 3" of
#: "10 - 3" or "10-3").
_NEGATIVE = re.compile(r"(?:(?<![\w.])[-\u2212]|\bnegative\s+)([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
#: An operator between two numbers, as a symbol or in the words CLINC150's and the generators' requests write.
_OPERATOR = r"(?:[-+*/x]|plus|minus|times|multiplied by|divided by|over)"
#: Operations no built-in expert computes: a query asking for one is no arithmetic or word problem
#: (rewritten into an operation that exists, "2**10" would give 20). Powers, roots, logarithms,
#: factorials, modulo, scientific notation; unknowns in an expression or a function ("2*b + 1147",
#: "h = q + -3", "d(-10)"), primes, factors, divisibility, derivatives, sorting and sequences, place
#: values, the closest or k'th biggest of a list, draws without replacement: the kinds mathematics_dataset's train
#: and dev splits showed the router taking or the list missing; chains of operations, from
#: CLINC150's and the unsupported generator's training requests; an equation that states its result,
#: from the generated chat requests (docs/decoding.md).
UNSUPPORTED_OPERATIONS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\*\*", r"\^", r"√", r"\d[eE][-+]?\d", r"\d\s*%\s*\d",
    rf"\d!\s*(?:(?:{_OPERATOR}|\^)\s*-?[\d(]|[=)])",  # "5! + 3", "10! divided by 8", not the "!" of "81001! - gracias"
    r"\bmod(?:ulo|ulus)?\b", r"\b(?:square|cube|nth)\s+roots?\b", r"\bsqrt\b", r"\bantilog", r"\blogarithm", r"\blog\s*(?:of|base|\d|\()",
    r"\bln\s*\(?\d", r"\bfactorial\b", r"\bsquared\b", r"\bcubed\b", r"\bto the (?:\w+ )?power\b", r"\bexponent",
    # A one-letter unknown beside an operator: not "what's -12.5", the "x" of "582 x -91.2" nor
    # the article of "a -5 degree low".
    r"(?<![\w.'’$])(?<!\d\s)[a-z](?:\s*[*/=^]|\s*[-+](?!\d)|[-+])\s*[-\d(]", r"\d\s*\*\s*[a-z](?![\w'’])", r"(?<![\w.])[a-z]\([a-z0-9-]+\)",
    r"\bprimes?\b", r"\bfactors\b", r"\bfactori[sz]", r"\bmultiples? of\b", r"\bdivisible\b", r"\bdivisors?\b",
    r"\bderivative", r"\bdifferentiate", r"\b(?:ascending|descending|increasing|decreasing) order\b",
    r"\bis\s+-?\d[\d.,]*\s+a factor of\b", r"\bdoes\s+-?\d[\d.,]*\s+divide\b", r"\bcomposite\b", r"\bdigit of\b", r"\bsort\s+-?\d",
    r"\b(?:closest|nearest) to\s*-?\d", r"\b(?:biggest|smallest|largest|greatest) value\b",
    r"\bwhat (?:comes|is) next\b", r"\bwithout replacement\b",
    # A sequence's term, before its numbers: "the next term in 841483, 840895, ...", not "next term in school".
    r"\b(?:next|[a-z]'?th|\d+(?:st|nd|rd|th)) term (?:in|of)\s*:?\s*[-\u2212]?\d",
    # A chain of operations ("544 / 50.4 / 1169.42", "250 times 118 times 9"): an arithmetic expert
    # computes one, and the router wrote ``divide: 544 / 50.4``.
    rf"\d\)?%?\s*{_OPERATOR}\s*\(?-?\d[\d.,]*%?\)?\s*{_OPERATOR}\s*\(?-?\d",
    # An equation that states its result leaves nothing to compute ("the slogan 2 + 2 = 5", which
    # the router wrote as ``add: 2 + 5``); "2 + 2 = ?" still asks.
    r"\d\s*\)?\s*=\s*\(?\s*-?\d",
))


def normalize_numbers(text: str) -> str:
    """``text`` with every thousands-grouped number written as a spec writes it ("54,788" -> "54788")."""
    return _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)


def signed_numbers(query: str) -> list[str]:
    """The numbers ``query`` writes with a minus of their own, as unsigned digits."""
    return _NEGATIVE.findall(normalize_numbers(query))


def number_pattern(query: str) -> str:
    """A spec number as the decoder may write it for ``query``: with a minus exactly where the
    query writes that number with one (the router wrote ``-785.75 / -36644`` for "-785.75 shared
    equally among 36644", and ``346.67 + 943.27`` for "-346.67 + 943.27")."""
    unsigned = r"[0-9]+(?:\.[0-9]+)?"
    signed = set(signed_numbers(query))
    if not signed:
        return unsigned
    plain = {m.group() for m in re.finditer(r"(?<![\w.\-\u2212])[0-9]+(?:\.[0-9]+)?", normalize_numbers(query))}
    plain -= {n for n in signed if re.search(rf"\bnegative\s+{re.escape(n)}(?![0-9.])", query, re.IGNORECASE)}
    only_signed = signed - plain
    number = unsigned
    if only_signed:  # never written without its minus
        number = rf"(?!(?:{one_of(only_signed)})(?![0-9.])){unsigned}"
    return f"(?:-(?:{one_of(signed)})|{number})"


@functools.lru_cache(maxsize=256)  # asked once per computing expert of the same query
def unsupported_operation(query: str) -> str | None:
    """The first part of ``query`` asking for an operation no built-in expert computes, if any."""
    for pattern in UNSUPPORTED_OPERATIONS:
        found = pattern.search(query)
        if found:
            return found.group()
    return None


def words(text: str) -> list[str]:
    """The case-folded words of ``text``."""
    return [w.casefold() for w in WORD.findall(text)]


@dataclass(frozen=True)
class SpecVocabulary:
    """``mode="copy"``: the spec's words are the query's words (each at most as
    often as the query has it; in the query's own case when ``case_sensitive``)
    or ``keywords`` (any number of times, any case), or the whole spec is one of
    ``phrases``; ``pattern``, if set, is a regular expression the whole spec
    must match (the expert's grammar; the decoder checks prefixes of it with the
    ``regex`` module's partial matching);
    ``mode="choice"``: the whole spec is one of ``phrases`` (the places a query names);
    ``mode="empty"``: the spec is empty;
    ``mode="never"``: the expert cannot take this query (arithmetic on a query
    without a number, a schedule that states no duration)."""

    mode: str = "copy"
    keywords: frozenset[str] = frozenset()
    phrases: frozenset[str] = frozenset()
    pattern: str | None = None
    case_sensitive: bool = False
    #: Words copied as if the query wrote them, as often as listed (``"3"`` for "triples").
    implied: tuple[str, ...] = ()
    #: Query words the spec may not copy, once per listing, as the query writes them: words the
    #: grammar writes as a keyword ("2 hours" is ``2hr``, so no task is named "hours").
    reserved: tuple[str, ...] = ()
    #: Numbers the spec must copy, each as often as listed, all before ``copies_all_by`` once the
    #: spec writes that mark: a schedule's durations (a plan leaves no task out) before its ``|``.
    #: Both decoding modes keep this rule: it is what the spec means, not how a writer orders it.
    copies_all: tuple[str, ...] = ()
    copies_all_by: str | None = None
    #: What separates the items before ``copies_all_by`` where each item takes exactly one number of
    #: ``copies_all`` (a schedule's ``,`` between tasks): no more items begin than there are numbers.
    #: Without it, a router that wrote a ``,`` after the last task had no duration left for the
    #: next one and wrote query words as its name until cut off.
    copies_all_items_by: str | None = None
    # Ordering rules, applied by ``full`` decoding (see ``lazarus_cot_router.constrain``) and, with
    # ``rules_are_meaning``, by ``generic`` decoding too:
    #: ``"all"``: the spec may end only once it has used every number of each
    #: sentence of the query it takes a number from; ``"in_order"``: the same,
    #: and the spec's numbers follow the query's order from wherever it starts.
    numbers: str | None = None
    #: With ``numbers="all"``: a mark after which the grammar takes no number but ``late_numbers``
    #: (the schedule's ``|``, then only a start hour); the spec writes it only once it has used
    #: every other number the rule wants, and ends only with a late number after it where the query
    #: requires one in any sentence (a schedule's start may sit in a sentence of its own).
    numbers_mark: str | None = None
    late_numbers: frozenset[str] = frozenset()
    #: Numbers the numbers rule never requires, though the spec may copy them: a schedule's number
    #: that no unit follows and that goes on into its clause ("20" of "in under 20 words").
    optional_numbers: frozenset[str] = frozenset()
    #: The spec copies the query's words in the query's order; with ``numbers="all"`` and a
    #: ``numbers_mark``, also the numbers before the mark (a schedule lists its tasks as asked).
    ordered: bool = False
    #: Whether the ordering rules above are what the spec means rather than how one kind of
    #: writer orders a request, so ``generic`` decoding keeps them too: a plan lists its tasks
    #: as the request asks for them and starts when it says (without the start it is another plan).
    rules_are_meaning: bool = False

    def generic(self) -> "SpecVocabulary":
        """This vocabulary as ``generic`` decoding uses it: grammar, keywords and copying, and
        its ordering rules only where they are what the spec means (``rules_are_meaning``)."""
        if self.rules_are_meaning:
            return self
        return dataclasses.replace(self, numbers=None, numbers_mark=None, late_numbers=frozenset(),
                                   optional_numbers=frozenset(), ordered=False)

    def __post_init__(self):
        if self.mode not in ("copy", "choice", "empty", "never"):
            raise ValueError(f"unknown spec vocabulary mode {self.mode!r}")
        if self.numbers not in (None, "all", "in_order"):
            raise ValueError(f"unknown numbers rule {self.numbers!r}")
        object.__setattr__(self, "keywords", frozenset(w.casefold() for w in self.keywords))


#: Words joined by hyphens ("double-check", "twenty-five").
_HYPHENATED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")


def _hyphenated_non_numbers(query: str) -> set[int]:
    """Where the words start that a hyphen joins to a word that is no number word: "double" in
    "double-check your answer" is no 2 (the router wrote ``multiply: -75.9 * 2`` for "-75.9 over
    490, double-check your answer"), "twenty" in "twenty-five" stays a number word."""
    starts = set()
    for m in _HYPHENATED.finditer(query):
        parts = m.group().split("-")
        if all(p.casefold() in NUMBER_WORDS for p in parts):
            continue
        at = m.start()
        for p in parts:
            starts.add(at)
            at += len(p) + 1
    return starts


def spelled_numbers(query: str) -> list[tuple[re.Match, str]]:
    """The query's number words (:data:`WORD` matches) with the digits each spells."""
    skip = _hyphenated_non_numbers(query)
    return [(m, NUMBER_WORDS[m.group().casefold()]) for m in WORD.finditer(query)
            if m.group().casefold() in NUMBER_WORDS and m.start() not in skip]


def number_words_in(query: str) -> list[str]:
    """Digits the query spells out in words ("triples" -> ``3``), once per number word."""
    return [digits for _, digits in spelled_numbers(query)]


@dataclass(frozen=True)
class QueryNumber:
    """A number the query writes, in digits or as a word."""

    spellings: frozenset[str]  # as a spec writes it: "622.06"; "3" for "triples"
    required: bool  # whether a spec that uses its sentence must use it: digits, not number words
    sentence: int
    after: str = ""  # the word that follows it, case-folded ("hours" in "2 hours")
    position: int = 0  # its index among the query's words (``WORD`` matches)
    #: Whether it ends its clause: punctuation, a line break or the end of the query follows it,
    #: not a word ("from 9." and "at 11:30", not "under 20 words").
    ends_clause: bool = False


def query_numbers(query: str) -> tuple[QueryNumber, ...]:
    """The query's numbers in order: digits (required by the numbers rule) and number words (not:
    "one" in "every remaining one" is no step)."""
    breaks = [m.start() for m in _SENTENCE_BREAK.finditer(query)]
    matches = list(WORD.finditer(query))
    spelled = {m.start(): digits for m, digits in spelled_numbers(query)}
    found = []
    for i, m in enumerate(matches):
        word = m.group()
        digits = word if word[0].isdigit() else spelled.get(m.start())
        if digits is None:
            continue
        sentence = sum(b < m.start() for b in breaks)
        following = matches[i + 1] if i + 1 < len(matches) else None
        after = following.group().casefold() if following else ""
        ends_clause = following is None or bool(query[m.end():following.start()].strip(" "))
        found.append(QueryNumber(frozenset([digits]), word[0].isdigit(), sentence, after, i, ends_clause))
    return tuple(found)


def copy_vocabulary(query: str, *keywords: str, phrases: frozenset[str] = frozenset(),
                    pattern: str | None = None, case_sensitive: bool = False,
                    needs_number: bool = False, computes: bool = False, reserved: tuple[str, ...] = (),
                    numbers: str | None = None, numbers_mark: str | None = None,
                    late_numbers: frozenset[str] = frozenset(), optional_numbers: frozenset[str] = frozenset(),
                    ordered: bool = False, rules_are_meaning: bool = False, copies_all: tuple[str, ...] = (),
                    copies_all_by: str | None = None, copies_all_items_by: str | None = None) -> SpecVocabulary:
    """Query words plus ``keywords`` plus the digits of its number words (each
    as often as the query spells it); ``mode="never"`` if ``needs_number`` and
    the query has no number at all, or if ``computes`` (the expert does
    arithmetic) and the query asks for an operation no expert computes."""
    spelled = number_words_in(query)
    if needs_number and not spelled and not any(ch.isdigit() for ch in query):
        return SpecVocabulary("never")
    if computes and unsupported_operation(query):
        return SpecVocabulary("never")
    return SpecVocabulary("copy", frozenset(keywords), phrases, pattern, case_sensitive, tuple(spelled),
                          tuple(reserved), tuple(copies_all), copies_all_by, copies_all_items_by, numbers,
                          numbers_mark, late_numbers, optional_numbers, ordered, rules_are_meaning)
