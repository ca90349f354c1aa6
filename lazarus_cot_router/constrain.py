"""Copy-constrained greedy decoding of routing lines.

A small router picks the right expert far more often than it copies the spec
right: it drops a digit (``-3`` for "trades away 30"), garbles a rare city
("Ykkai" for "Yokkaichi"), swaps in a name it memorized in training, or loops
("New New New"). Every built-in spec is made of words copied from the query
plus a few grammar words, so decoding can rule those mistakes out. Three modes
(:data:`DECODING_MODES`):

* ``free``: no constraint (the model's own greedy line);
* ``generic``: the line's grammar and the set of experts, and copying:
  before ``:``, the text must be the start of ``<expert>:`` for a known expert
  that can take the query (arithmetic needs a number; no expert takes an
  operation it does not support); after it, every word of the spec (a run of
  letters, or a number: ``622.06``, never a cut-off ``622``) must be one of the
  expert's keywords (``hr``, ``no_overlap``, ...) or a word of the query, used
  at most as often as the query uses it (case-folded, unless the expert asks
  for the query's own case), numbers normalized (``54,788`` is ``54788``,
  "twelve" ``12``); an expert may instead list the specs it accepts (``time``:
  the places the query names, or a zone name); the spec must stay a prefix of
  the expert's grammar; a word is begun only where a query word it starts may
  still finish it; numbers an expert says the spec must all copy
  (``SpecVocabulary.copies_all``: a schedule's durations) are all used, by no more
  items than there are of them (``copies_all_items_by``: one task each); and the
  ordering rules of an expert whose rules are what its spec means
  (``SpecVocabulary.rules_are_meaning``: a schedule's tasks in the query's order,
  its start hour used);
* ``full``: ``generic`` plus every expert's ordering rules (``SpecVocabulary.numbers``,
  ``ordered``; :mod:`.ordering_rules`): a word problem's numbers in the query's order too;
  that rule encodes how one kind of writer orders a problem, so ``generic`` is the default.
  A line that runs into a dead end under ``copies_all`` or the ordering rules is
  finished without them (grammar and copying still hold).

A line that no valid continuation can finish is ended at once (by
:class:`~lazarus_cot_router.constrained_choice.ConstrainedChoice`, which applies
the constraint to the model's logits): the rewriter
passes the query through (chat) rather than let the model write freely.

Experts declare all of this as data through :meth:`Expert.spec_vocabulary`;
one that returns ``None`` (the default, e.g. a third-party expert whose spec is
not a copy) is decoded freely. The constraint works on the model's ranking: at
each step the highest-scoring token that keeps the line valid wins, and the
tokens ranked above it are masked out, so the probabilities the rewriter
reports stay the model's own.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import string
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import regex

from .experts.vocabulary import (WORD, QueryNumber, SpecVocabulary, normalize_numbers, query_numbers, signed_numbers,
                                 spelled_numbers)
from .grammar import ARROW
from .ordering_rules import in_query_order, numbers_ok

#: Characters offered, besides words, when the grammar must pick the next token.
PUNCTUATION = tuple(" :|,.-+*/()%")
#: What may follow a finished word: punctuation, or a word of the other kind ("2hr" is "2" and
#: "hr"); not a point after a number ("425." goes on as "425.5").
_AFTER_NUMBER = tuple(p for p in PUNCTUATION if p != ".") + tuple(string.ascii_letters)
_AFTER_LETTERS = PUNCTUATION + tuple(string.digits)
#: How many punctuation characters may stand between two words of a spec ("12 | -8").
MAX_GLUE = 3
DECODING_MODES = ("free", "generic", "full")
DEFAULT_DECODING = "generic"


@functools.lru_cache(maxsize=64)
def _prefixes(vocabulary: frozenset[str]) -> frozenset[str]:
    return frozenset(w[:i] for w in vocabulary for i in range(1, len(w) + 1))


#: Whitespace no spec writes: a run of it, or any but a plain space.
_LOOSE_SPACE = regex.compile(r"\s\s|[^\S ]")


@functools.lru_cache(maxsize=64)
def _folded(phrases: frozenset[str]) -> frozenset[str]:
    return frozenset(p.casefold() for p in phrases)


@functools.lru_cache(maxsize=64)
def _compile(pattern: str):
    return regex.compile(pattern)


@dataclass
class _SpecRules:
    mode: str
    keywords: frozenset[str]
    phrases: frozenset[str]
    pattern: str | None
    case_sensitive: bool
    counts: Counter  # query words, case-folded unless case_sensitive
    surface: dict  # key of counts -> the word as the query writes it
    numbers_rule: str | None = None
    numbers: tuple[QueryNumber, ...] = ()
    numbers_mark: str | None = None
    late_numbers: frozenset[str] = frozenset()
    order: tuple[str, ...] | None = None  # the query's words in order, if the spec copies them in order
    copies_all: Counter = dataclasses.field(default_factory=Counter)  # numbers the spec must all use
    copies_all_by: str | None = None
    copies_all_items_by: str | None = None
    #: A number word the spec may also copy as a word (key -> its digits): one budget for both, so
    #: "one" of "one after the other" is not both a task's name and its 1 hour.
    spells: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, vocab: SpecVocabulary, query: str) -> "_SpecRules":
        key = _key(vocab.case_sensitive)
        found = [*WORD.findall(query), *vocab.implied]
        surface: dict[str, str] = {}
        for w in found:
            surface.setdefault(key(w), w)
        counts = Counter(key(w) for w in found)
        counts.subtract(Counter(key(w) for w in vocab.reserved))
        numbers = tuple(dataclasses.replace(n, required=False) if n.spellings & vocab.optional_numbers else n
                        for n in query_numbers(query)) if vocab.numbers else ()
        order = tuple(key(w) for w in WORD.findall(query)) if vocab.ordered else None
        implied = set(vocab.implied)
        spells = {key(m.group()): digits for m, digits in spelled_numbers(query) if digits in implied}
        return cls(vocab.mode, vocab.keywords, vocab.phrases, vocab.pattern, vocab.case_sensitive,
                   +counts, surface, vocab.numbers, numbers, vocab.numbers_mark, vocab.late_numbers, order,
                   Counter(vocab.copies_all), vocab.copies_all_by, vocab.copies_all_items_by, spells)

    @property
    def empty(self) -> bool:
        return self.mode == "empty"

    def is_listed_word(self, word: str) -> bool:
        """A word the spec copies from the query that is no number (a task name's)."""
        return not self.is_keyword(word) and not word[0].isdigit()

    def is_keyword(self, word: str) -> bool:
        """Keywords are lower-case grammar words; where case matters ("Stefan"
        is not "start"), only as written."""
        return (word if self.case_sensitive else word.casefold()) in self.keywords

    def key(self, word: str) -> str:
        return _key(self.case_sensitive)(word)

    def used_by(self, words: list[str]) -> Counter:
        """How much of each query word's budget ``words`` (a spec's finished words) use up: a
        number word copied as a word uses up the digits it spells too."""
        used: Counter = Counter()
        for word in words:
            if not self.is_keyword(word):
                key = self.key(word)
                used[key] += 1
                if key in self.spells:
                    used[self.spells[key]] += 1
        return used

    def words_left(self, used: Counter) -> list[str]:
        """Keywords, and the query words not used up (as the query writes them)."""
        return [*self.keywords, *(self.surface[w] for w, n in self.counts.items() if used[w] < n)]

    def starts_a_word_left(self, open_word: str, used: Counter) -> list[str]:
        """The keywords and unused query words that ``open_word`` is the start of."""
        def starts(word: str) -> bool:
            if not self.case_sensitive:
                return word.casefold().startswith(open_word.casefold())
            return word.startswith(open_word)

        return [w for w in self.words_left(used) if starts(w)]


def _key(case_sensitive: bool):
    return (lambda w: w) if case_sensitive else str.casefold


class LineConstraint:
    """Which partial routing lines are valid for one query."""

    def __init__(self, vocabularies: Mapping[str, SpecVocabulary | None], query: str, mode: str = DEFAULT_DECODING):
        if mode not in ("generic", "full"):
            raise ValueError(f"a line constraint is 'generic' or 'full', not {mode!r}")
        if mode == "generic":
            vocabularies = {name: None if v is None else v.generic() for name, v in vocabularies.items()}
        self.heads = tuple(f"{name}:" for name, vocab in vocabularies.items() if vocab is None or vocab.mode != "never")
        self.signed_numbers = frozenset(signed_numbers(query))  # as digits: "37.9" for "-37.9"
        self.rules: dict[str, _SpecRules | None] = {
            name: None if vocab is None else _SpecRules.build(vocab, query) for name, vocab in vocabularies.items()
        }

    @classmethod
    def for_experts(cls, experts: Mapping[str, object], query: str, mode: str = DEFAULT_DECODING) -> "LineConstraint":
        """The constraint of each expert's :meth:`spec_vocabulary` for ``query``
        (its numbers written as a spec writes them: "54,788" is ``54788``)."""
        query = normalize_numbers(query)
        return cls({name: expert.spec_vocabulary(query) for name, expert in experts.items()}, query, mode)

    def relaxed(self) -> "LineConstraint":
        """The same constraint with every expert's ordering rules and ``copies_all``
        dropped: what a line that has run into a dead end under them is finished
        with (a word problem that states one number cannot take the step its
        grammar needs; a schedule that skipped a task has no name left after the
        last one it wrote)."""
        relaxed = copy.copy(self)
        relaxed.rules = {name: None if rules is None else dataclasses.replace(rules, numbers_rule=None, order=None,
                                                                              copies_all=Counter())
                         for name, rules in self.rules.items()}
        return relaxed

    @property
    def can_relax(self) -> bool:
        return any(rules is not None and (rules.numbers_rule or rules.order is not None or rules.copies_all)
                   for rules in self.rules.values())

    def allows(self, text: str) -> bool:
        """Whether ``text`` (what the model wrote so far) can still become a
        valid line."""
        if "\n" in text:
            return False  # one line
        text = text.lstrip()
        name, sep, rest = text.partition(":")
        if not sep:
            return any(head.startswith(text) for head in self.heads)
        if f"{name}:" not in self.heads:
            return False
        rules = self.rules[name]
        if rules is None:
            return True
        spec, arrow, after = rest.partition(ARROW)
        if arrow:
            return not after.strip() and _spec_ok(rules, spec, complete=True)
        if spec.endswith("-") and _spec_ok(rules, spec[:-1], complete=True):
            return True  # the first character of the arrow
        return _spec_ok(rules, spec, complete=False)

    def leads_somewhere(self, text: str) -> bool:
        """:meth:`allows`, and where ``text`` ends inside a word, some query word
        or keyword it is the start of finishes it validly. "schedule: Tara:2hr,A"
        starts "AND" and "ARRANGE", both ruled out: a model let write the "A"
        had nothing left to write but what relaxing the rules let through."""
        if not self.allows(text):
            return False
        name, sep, rest = text.lstrip().partition(":")
        rules = self.rules.get(name) if sep else None
        if rules is None or rules.empty or ARROW in rest:
            return True
        done, open_word = _split_words(rest)
        if not open_word:
            return _can_go_on(rules, rest, done)
        if not open_word[:1].isalpha():
            return True
        words = rules.starts_a_word_left(open_word, rules.used_by(done))
        return not words or any(self.allows(text + w[len(open_word):]) for w in words)

    def continuations(self, text: str) -> list[str]:
        """Texts that, appended to ``text``, finish its open word or the line;
        for when none of the model's best tokens is valid."""
        text = text.lstrip()
        name, sep, rest = text.partition(":")
        if not sep:
            return [head[len(text):] for head in self.heads if head.startswith(text)]
        rules = self.rules.get(name)
        if rules is None or ARROW in rest:
            return []
        found = [" " + ARROW, ARROW]
        if rest.endswith(ARROW[0]):
            found.append(ARROW[1:])  # " -" may have begun the arrow
        if rules.empty:
            return found
        # The spec as written, its trailing space kept: after "time: pacific " the rest of
        # "pacific standard time" is "standard time", not " standard time".
        spec = rest.lstrip()
        if spec:
            found += [p[len(spec):] for p in rules.phrases
                      if p.casefold().startswith(spec.casefold()) and len(p) > len(spec)]
        elif rules.mode == "choice":
            found += [prefix + p for p in rules.phrases for prefix in ("", " ")]
        if rules.mode == "choice":
            return found
        done, open_word = _split_words(rest)
        used = rules.used_by(done)
        if open_word:
            found += [w[len(open_word):] for w in rules.starts_a_word_left(open_word, used) if len(w) > len(open_word)]
        else:
            left = rules.words_left(used)
            found += [*left, *(" " + w for w in left)]
        return found + list(PUNCTUATION)


def _can_go_on(rules: _SpecRules, spec: str, done: list[str]) -> bool:
    """Whether ``spec``, which ends between words, is a whole spec now (or has begun the
    arrow), or some word the query has left to copy (or a keyword), after at most
    :data:`MAX_GLUE` punctuation characters, keeps it a valid prefix. "27 | *3 +" with every
    number of the query used is none of these: the line would run into a dead end. The grammar
    alone is not enough: its partial match takes "-81.6 * -76.7" for "76.7% of -81.6" (the
    lookahead for the percent sign meets the end of the text), though the query never writes
    76.7 with a minus."""
    if rules.pattern is None or rules.mode == "choice" or not spec.strip():
        return True
    if _spec_ok(rules, spec, complete=True) or (spec.endswith("-") and _spec_ok(rules, spec[:-1], complete=True)):
        return True
    grammar = _compile(rules.pattern)
    words = rules.words_left(rules.used_by(done))
    frontier = {spec.strip() + (" " if spec[-1:].isspace() else "")}
    for depth in range(MAX_GLUE + 1):
        if any(_spec_ok(rules, text + w, complete=False) for text in frontier for w in words):
            return True
        if depth < MAX_GLUE:
            frontier = {text + p for text in frontier for p in PUNCTUATION if grammar.fullmatch(text + p, partial=True)}
    return False


def _split_words(text: str) -> tuple[list[str], str]:
    """The finished words of ``text`` and the word it ends inside ("" if none);
    "622." is an open number (of "622.06"), not "622" and a full stop."""
    matches = list(WORD.finditer(text))
    if matches and matches[-1].end() == len(text):
        return [m.group() for m in matches[:-1]], matches[-1].group()
    if matches and text.endswith(".") and matches[-1].end() == len(text) - 1 and matches[-1].group().isdigit():
        return [m.group() for m in matches[:-1]], matches[-1].group() + "."
    return [m.group() for m in matches], ""


def _spec_ok(rules: _SpecRules, spec: str, complete: bool) -> bool:
    if _LOOSE_SPACE.search(spec):
        return False  # no spec needs a run of spaces or a tab; a model stuck for a valid word writes them forever
    if rules.empty:
        # Nothing but the start of the arrow may follow the colon.
        return not spec.strip() or (not complete and spec.strip() == "-")
    stripped = spec.strip()
    if rules.mode == "choice" and not stripped:
        return not complete
    if stripped and rules.phrases:
        folded = _folded(rules.phrases)
        if stripped.casefold() in folded or (not complete and spec.lstrip().casefold() in _prefixes(folded)):
            return True
    if rules.mode == "choice":
        return False
    if rules.pattern is not None and not _compile(rules.pattern).fullmatch(stripped, partial=not complete):
        return False
    done, open_word = _split_words(spec) if not complete else ([m.group() for m in WORD.finditer(spec)], "")
    used = rules.used_by(done)
    if any(n > rules.counts.get(key, 0) for key, n in used.items()):
        return False
    if rules.order is not None and not in_query_order(rules, done, open_word):
        return False
    if rules.copies_all and not _copied_all(rules, spec, complete):
        return False
    if rules.numbers_rule and not numbers_ok(rules, spec, open_word[:1].isdigit(), complete):
        return False
    if not open_word:
        return True
    # The open word must have a completion the grammar takes too: "st" may start "start" and a task
    # name may start "st", but a task named "start" is not a task.
    finishes = [w[len(open_word):] for w in rules.starts_a_word_left(open_word, used)]
    if rules.pattern is None:
        return bool(finishes)
    grammar = _compile(rules.pattern)
    return any(_word_can_end(grammar, stripped + rest) for rest in finishes)


def _word_can_end(grammar, text: str) -> bool:
    """Whether the grammar takes ``text`` with its last word finished there: the spec ends, or
    goes on with punctuation or a word of the other kind. A partial match alone is not enough:
    for "675 * -425" the grammar's unsigned number takes "425" as the start of "4255", and
    copying takes "425" as a word of the query, but no spec goes on from "675 * 425"."""
    if not grammar.fullmatch(text, partial=True):
        return False
    after = _AFTER_NUMBER if text[-1:].isdigit() else _AFTER_LETTERS
    return bool(grammar.fullmatch(text)) or any(grammar.fullmatch(text + c, partial=True) for c in after)


def _copied_all(rules: _SpecRules, spec: str, complete: bool) -> bool:
    """Whether ``spec`` has used every number of ``rules.copies_all`` before its mark, once it
    has written the mark or is complete, and has begun no more items (``copies_all_items_by``)
    than there are such numbers."""
    head, mark, _ = spec.partition(rules.copies_all_by) if rules.copies_all_by else (spec, "", "")
    if rules.copies_all_items_by and head.count(rules.copies_all_items_by) >= rules.copies_all.total():
        return False
    if not (mark or complete):
        return True
    used = Counter(w for w in WORD.findall(head) if w[0].isdigit())
    return all(used[number] >= n for number, n in rules.copies_all.items())
