"""The ordering rules of ``full`` decoding (see :mod:`.constrain`): what an expert
declares with ``SpecVocabulary.ordered`` (the spec's copied words in the query's
order) and ``SpecVocabulary.numbers`` (a word problem's numbers in the query's
order; a schedule's durations all used, in order, and its start hour). A word
problem's encode how one kind of writer orders a problem, so the default
``generic`` decoding leaves them out; a schedule's are what its plan means
(``SpecVocabulary.rules_are_meaning``), so ``generic`` keeps them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Sequence

from .experts.vocabulary import WORD, QueryNumber

if TYPE_CHECKING:
    from .constrain import _SpecRules as SpecRules


def in_query_order(rules: SpecRules, done: list[str], open_word: str) -> bool:
    """Whether the spec's copied words (numbers aside) come in the query's order, the open word
    included as the start of a query word."""
    position = 0
    for word in done:
        if not rules.is_listed_word(word):
            continue
        try:
            position = rules.order.index(rules.key(word), position) + 1
        except ValueError:
            return False
    if not open_word or open_word[0].isdigit():
        return True
    return starts_a_word(rules, open_word, rules.order[position:])


def starts_a_word(rules: SpecRules, open_word: str, query_words: Sequence[str]) -> bool:
    """Whether ``open_word`` may start one of ``query_words`` (keys of ``rules``) or a keyword."""
    return any(w.startswith(rules.key(open_word)) for w in query_words) or any(
        k.startswith(open_word.casefold()) for k in rules.keywords)


#: A spec ending in one of these waits for a number ("eggs:16 | -3 *").
AWAITING_NUMBER = "|+-*/("


def numbers_ok(rules: SpecRules, spec: str, open_number: bool, complete: bool) -> bool:
    """The numbers rule of the expert's vocabulary (see ``SpecVocabulary.numbers``)
    for ``spec``, whose last number is still being written if ``open_number``."""
    used = [m.group() for m in WORD.finditer(spec) if m.group()[0].isdigit() and not rules.is_keyword(m.group())]
    opened = used.pop() if open_number and used else None
    if opened and spec.endswith("."):
        opened += "."  # "622." of "622.06"
    tokens = rules.numbers
    if rules.numbers_rule == "all":
        touched = {t.sentence for t in tokens if t.spellings & set(used)}
        if rules.order is not None and rules.numbers_mark and not listed_in_order(rules, spec, opened, touched):
            return False
        if not complete and not (rules.numbers_mark and rules.numbers_mark in spec):
            return True  # the copy counts already stop a number being used twice
        need = Counter(min(t.spellings) for t in tokens if t.required and t.sentence in touched
                       and (complete or not t.spellings & rules.late_numbers))
        have = Counter(used)
        return all(have[number] >= n for number, n in need.items()) and (not complete or late_given(rules, spec))
    states: set[int | None] = {None}  # index after the last query number matched; None: none yet
    for number in used:
        states = {k + 1 for j in states for k in next_numbers(tokens, j) if number in tokens[k].spellings}
        if not states:
            return False
    if opened:
        return any(s.startswith(opened) for j in states for k in next_numbers(tokens, j) for s in tokens[k].spellings)
    if spec.rstrip()[-1:] in tuple(AWAITING_NUMBER):
        return any(next_numbers(tokens, j) for j in states)
    if not complete:
        return True
    # Done: no required number is left in the sentence of the last one used.
    return any(j is None or not any(t.required and t.sentence == tokens[j - 1].sentence for t in tokens[j:])
               for j in states)


def late_given(rules: SpecRules, spec: str) -> bool:
    """Whether ``spec`` writes a late number after its mark where the query requires one in any
    sentence: "... nap for 60 minutes. Schedule them: kicking off at 12." gives its start in a
    sentence that states no duration, and a plan without it is another plan."""
    if not any(t.required and t.spellings & rules.late_numbers for t in rules.numbers):
        return True
    after = spec.partition(rules.numbers_mark)[2] if rules.numbers_mark else spec
    return any(m.group() in rules.late_numbers for m in WORD.finditer(after))


def listed_in_order(rules: SpecRules, spec: str, opened: str | None, touched: set[int]) -> bool:
    """Whether the numbers before the mark follow the query's order, skipping only numbers that
    are optional, late or in a sentence the spec leaves out; a number being written before the
    mark must start the next one."""
    head, mark, _ = spec.partition(rules.numbers_mark)
    listed = [m.group() for m in WORD.finditer(head) if m.group()[0].isdigit() and not rules.is_keyword(m.group())]
    if opened and not mark:
        listed[-1:] = []
    tokens = rules.numbers

    def skippable(t: QueryNumber) -> bool:
        return not t.required or bool(t.spellings & rules.late_numbers) or t.sentence not in touched

    def reachable(k: int):
        # The numbers the spec may use next after the query's first k: up to the first it may not skip.
        for j in range(k, len(tokens)):
            yield j
            if not skippable(tokens[j]):
                return

    states = {0}
    for number in listed:
        states = {j + 1 for k in states for j in reachable(k) if number in tokens[j].spellings}
        if not states:
            return False
    if not opened or mark:
        return True
    return any(s.startswith(opened) for k in states for j in reachable(k) for s in tokens[j].spellings)


def next_numbers(tokens: tuple[QueryNumber, ...], j: int | None) -> list[int]:
    """Indices of the query numbers the spec may use next after matching the
    one before ``j`` (``None``: the first), skipping only numbers that are
    optional or in a sentence the spec leaves out whole."""
    if j is None:  # the start: any number not preceded by a required one of its own sentence
        return [k for k, t in enumerate(tokens)
                if not any(u.required and u.sentence == t.sentence for u in tokens[:k])]
    current, skipped, found = tokens[j - 1].sentence, None, []
    for k in range(j, len(tokens)):
        if tokens[k].sentence != skipped:
            found.append(k)
        if tokens[k].required:
            if tokens[k].sentence == current:
                break
            skipped = tokens[k].sentence
    return found
