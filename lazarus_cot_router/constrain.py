"""Copy-constrained greedy decoding of routing lines.

A small router picks the right expert far more often than it copies the spec
right: it drops a digit (``-3`` for "trades away 30"), garbles a rare city
("Ykkai" for "Yokkaichi"), swaps in a name it memorized in training, or loops
("New New New"). Every built-in spec is made of words copied from the query
plus a few grammar words, so decoding can rule those mistakes out:

* before ``:``, the text must be the start of ``<expert>:`` for a known expert;
* after it, every word of the spec (a run of letters, or a number: ``622.06``,
  never a cut-off ``622``) must be
  one of the expert's keywords (``hr``, ``no_overlap``, ``dollars``, ...) or a
  word of the query, used at most as often as the query uses it (case-folded,
  unless the expert asks for the query's own case);
* an expert may instead list the specs it accepts (``time``: the places the
  query names, or a zone name);
* an expert with an empty spec (``chat``) allows nothing but `` ->``;
* an expert that cannot take the query (arithmetic without a number) is not
  offered at all.

Experts declare this through :meth:`Expert.spec_vocabulary`; one that returns
``None`` (the default, e.g. a third-party expert whose spec is not a copy) is
decoded freely. The constraint works on the model's ranking: at each step the
highest-scoring token that keeps the line valid wins, and the tokens ranked
above it are masked out, so the probabilities the rewriter reports stay the
model's own.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

import mlx.core as mx
import regex

from .experts.vocabulary import WORD, SpecVocabulary
from .grammar import ARROW

#: Characters offered, besides words, when the grammar must pick the next token.
PUNCTUATION = tuple(" :|,.-+*/")
#: How many of the best tokens are tried, per step, before giving up on the constraint.
TOP_K = 64


@functools.lru_cache(maxsize=64)
def _prefixes(vocabulary: frozenset[str]) -> frozenset[str]:
    return frozenset(w[:i] for w in vocabulary for i in range(1, len(w) + 1))


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

    @classmethod
    def build(cls, vocab: SpecVocabulary, found: list[str]) -> "_SpecRules":
        key = _key(vocab.case_sensitive)
        found = [*found, *vocab.implied]
        surface: dict[str, str] = {}
        for w in found:
            surface.setdefault(key(w), w)
        return cls(vocab.mode, vocab.keywords, vocab.phrases, vocab.pattern, vocab.case_sensitive,
                   Counter(key(w) for w in found), surface)

    @property
    def empty(self) -> bool:
        return self.mode == "empty"

    def is_keyword(self, word: str) -> bool:
        """Keywords are lower-case grammar words; where case matters ("Stefan"
        is not "start"), only as written."""
        return (word if self.case_sensitive else word.casefold()) in self.keywords

    def key(self, word: str) -> str:
        return _key(self.case_sensitive)(word)

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

    def __init__(self, vocabularies: Mapping[str, SpecVocabulary | None], query: str):
        found = WORD.findall(query)
        self.heads = tuple(f"{name}:" for name, vocab in vocabularies.items() if vocab is None or vocab.mode != "never")
        self.rules: dict[str, _SpecRules | None] = {
            name: None if vocab is None else _SpecRules.build(vocab, found) for name, vocab in vocabularies.items()
        }

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
        if rules.empty:
            return found
        spec = rest.strip()
        if spec:
            found += [p[len(spec):] for p in rules.phrases
                      if p.casefold().startswith(spec.casefold()) and len(p) > len(spec)]
        elif rules.mode == "choice":
            found += [prefix + p for p in rules.phrases for prefix in ("", " ")]
        if rules.mode == "choice":
            return found
        done, open_word = _split_words(rest)
        used = Counter(rules.key(w) for w in done)
        if open_word:
            found += [w[len(open_word):] for w in rules.starts_a_word_left(open_word, used) if len(w) > len(open_word)]
        else:
            left = rules.words_left(used)
            found += [*left, *(" " + w for w in left)]
        return found + list(PUNCTUATION)


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
    if rules.empty:
        # Nothing but the start of the arrow may follow the colon.
        return not spec.strip() or (not complete and spec.strip() == "-")
    if "  " in spec:
        return False  # no spec needs a run of spaces; a model stuck for a valid word writes them forever
    stripped = spec.strip()
    if rules.mode == "choice" and not stripped:
        return not complete
    if stripped and rules.phrases:
        folded = _folded(rules.phrases)
        if stripped.casefold() in folded or (not complete and stripped.casefold() in _prefixes(folded)):
            return True
    if rules.mode == "choice":
        return False
    if rules.pattern is not None and not _compile(rules.pattern).fullmatch(stripped, partial=not complete):
        return False
    done, open_word = _split_words(spec) if not complete else ([m.group() for m in WORD.finditer(spec)], "")
    used: Counter = Counter()
    for word in done:
        if rules.is_keyword(word):
            continue
        key = rules.key(word)
        used[key] += 1
        if used[key] > rules.counts.get(key, 0):
            return False
    if not open_word:
        return True
    # The open word must have a completion the grammar takes too: "st" may start "start" and a task
    # name may start "st", but a task named "start" is not a task.
    finishes = [w[len(open_word):] for w in rules.starts_a_word_left(open_word, used)]
    if rules.pattern is None:
        return bool(finishes)
    grammar = _compile(rules.pattern)
    return any(grammar.fullmatch(stripped + rest, partial=True) for rest in finishes)


class ConstrainedChoice:
    """A logits processor for mlx-lm's generators: masks the tokens ranked
    above the best one that keeps the line valid. One instance per sequence."""

    def __init__(self, constraint: LineConstraint, tokenizer, banned: Sequence[int] = (), head: str = "",
                 top_k: int = TOP_K):
        self.constraint, self.tokenizer, self.head = constraint, tokenizer, head
        self.banned, self.top_k = frozenset(banned), top_k
        self._start: int | None = None

    def _valid(self, generated: list[int], token: int) -> bool:
        return token not in self.banned and self.constraint.allows(self.head + self.tokenizer.decode(generated + [token]))

    def __call__(self, context: mx.array, logits: mx.array) -> mx.array:
        tokens = context.tolist()
        if self._start is None:
            self._start = len(tokens)
        generated = tokens[self._start:]
        row = logits.reshape(-1)
        k = min(self.top_k, row.shape[0])
        top = mx.argpartition(-row, k - 1)[:k]
        scores = row[top].tolist()
        ranked = [t for _, t in sorted(zip(scores, top.tolist()), key=lambda p: -p[0])]
        for i, token in enumerate(ranked):
            if self._valid(generated, token):
                if i == 0:
                    return logits
                return _mask(logits, row, ranked[:i])
        # None of the best tokens keeps the line valid: ask the grammar what
        # may come next and take the one the model scores highest.
        text = self.head + self.tokenizer.decode(generated)
        candidates = {ids[0] for rest in self.constraint.continuations(text)
                      if (ids := self.tokenizer.encode(rest, add_special_tokens=False))}
        valid = [t for t in candidates if self._valid(generated, t)]
        if not valid:
            return logits  # nothing keeps the line valid: decode freely, execution will say why
        best = max(valid, key=lambda t: row[t].item())
        return _mask(logits, row, [best], keep_only=True)


def _mask(logits: mx.array, row: mx.array, tokens: list[int], keep_only: bool = False) -> mx.array:
    """``logits`` with ``tokens`` set to -inf, or with everything else set to -inf."""
    chosen = mx.zeros(row.shape, dtype=mx.bool_)
    chosen[mx.array(tokens)] = True
    blocked = mx.logical_not(chosen) if keep_only else chosen
    return mx.where(blocked, mx.array(float("-inf"), dtype=row.dtype), row).reshape(logits.shape)
