"""Generic variations of a generated query that never change its gold line: an
extra instruction ("answer in french"), politeness, casing and light typos.
The instruction and politeness pools are split, so the held-out split tests
instructions the router never saw. Casing and typos never touch numbers or any
word the spec copies."""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Sequence

from lazarus_cot_router.experts.base import Example

from .pools import Split, Template

INSTRUCTION_TAG = "instruction:"
INSTRUCTION_RATE = 0.45
POLITE_RATE = 0.15
TYPO_RATE = 0.1
CASE_RATES = (("lower", 0.05), ("upper", 0.04), ("title", 0.03))


def _phrases(texts: Sequence[str]) -> tuple[Template, ...]:
    return tuple(Template(_slug(text), text) for text in texts)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower().replace("{q}", "")).strip("-")


INSTRUCTIONS = Split(
    "instructions",
    _phrases([
        "answer in french", "be brief", "show your work", "step by step", "in JSON",
        "explain like I'm five", "answer in one word", "reply in Spanish", "answer briefly",
        "keep it short", "no explanation needed", "respond in German", "be concise",
        "format the answer as markdown", "think it through carefully", "in under 20 words",
        "just the answer", "use simple words", "answer in Italian", "double-check your answer",
        "reply casually", "in one sentence",
    ]),
    _phrases([
        "en français s'il vous plaît", "use bullet points", "keep it under 10 words",
        "respond in Japanese", "answer like a pirate", "put the answer in bold",
        "no more than one line", "auf Deutsch bitte", "explain your reasoning", "as a table",
        "make it formal", "por favor responde en español", "write it as a haiku",
        "summarize it in a tweet",
    ]),
)


POLITENESS = Split(
    "politeness",
    _phrases(["please, {q}", "could you help? {q}", "hey, {q}", "hi! {q}", "{q} please", "{q} thanks", "{q} thank you"]),
    _phrases(["kindly answer this: {q}", "hello there! {q}", "excuse me, {q}", "{q} cheers", "{q} much appreciated"]),
)


_PREFIX_SEPARATORS = (": ", ". ", " - ", "\n")
_SUFFIX_SEPARATORS = (", ", ". ", " - ", "\n")
_AFTER_SENTENCE = (" ", "\n", " - ")
_WORD = re.compile(r"(?<!\w)[^\W\d_]+(?:'[^\W\d_]+)*(?!\w)")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion half halves third thirds quarter quarters dozen dozens twice thrice double "
    "doubled doubles triple triples tripled pair pairs couple first second fourth fifth hour hours minute minutes "
    "noon midnight".split()
)


def has_instruction(example: Example) -> bool:
    return any(tag.startswith(INSTRUCTION_TAG) for tag in example.tags)


def variation_pools() -> tuple[Split, ...]:
    return INSTRUCTIONS, POLITENESS


def vary_example(example: Example, rng: random.Random, split: str) -> Example:
    """``example`` with generic variations applied; spec and answer unchanged."""
    query, tags = example.query, list(example.tags)
    copied = set(_WORD.findall(example.spec)) | set(re.findall(r"[A-Za-z]+", example.spec))
    if rng.random() < POLITE_RATE:
        phrase = POLITENESS.choice(rng, split).text
        if phrase.startswith("{q}"):
            query = _append(query, phrase.removeprefix("{q}").strip(), rng)
        else:
            query = _capitalize(phrase.replace("{q}", query))
        tags.append("polite")
    if rng.random() < INSTRUCTION_RATE:
        instruction = INSTRUCTIONS.choice(rng, split)
        if rng.random() < 0.7:
            query = _append(query, instruction.text, rng)
            tags += [INSTRUCTION_TAG + instruction.id, "instruction-at:suffix"]
        else:
            query = _prepend(query, instruction.text, rng)
            tags += [INSTRUCTION_TAG + instruction.id, "instruction-at:prefix"]
    if rng.random() < TYPO_RATE:
        typo = add_typo(query, copied, rng)
        if typo != query:
            query = typo
            tags.append("typo")
    draw, threshold = rng.random(), 0.0
    for case, rate in CASE_RATES:
        threshold += rate
        if draw < threshold:
            changed = change_case(query, case, copied)
            if changed != query:
                query = changed
                tags.append(f"case:{case}")
            break
    return Example(query, example.expert, example.spec, example.answer, tuple(tags))


def add_typo(query: str, protected: set[str], rng: random.Random) -> str:
    """Swap two letters or drop one inside a lowercase word of 4+ letters that
    is not a number word and not copied by the spec."""
    lowered = {word.lower() for word in protected}
    spans = [
        m.span() for m in _WORD.finditer(query)
        if len(m.group()) >= 4 and m.group().isalpha() and m.group().islower()
        and m.group() not in _NUMBER_WORDS and not any(m.group() in w or w in m.group() for w in lowered if len(w) > 1)
    ]
    if not spans:
        return query
    start, end = rng.choice(spans)
    word = query[start:end]
    k = rng.randrange(1, len(word) - 1)
    if word[k] != word[k + 1] and rng.random() < 0.5:
        typo = word[:k] + word[k + 1] + word[k] + word[k + 2:]
    else:
        typo = word[:k] + word[k + 1:]
    return query[:start] + typo + query[end:]


def change_case(query: str, case: str, protected: set[str]) -> str:
    """``lower``, ``upper`` or ``title`` case for every word the spec does not copy."""
    change = {"lower": str.lower, "upper": str.upper, "title": str.capitalize}[case]
    return _WORD.sub(lambda m: m.group() if m.group() in protected else change(m.group()), query)


def _append(query: str, text: str, rng: random.Random) -> str:
    stripped = query.rstrip()
    separator = rng.choice(_AFTER_SENTENCE if stripped[-1:] in ".?!" else _SUFFIX_SEPARATORS)
    if separator in (", ", " - "):
        return stripped + separator + text
    return stripped + separator + _capitalize(text) + rng.choice(("", "."))


def _prepend(query: str, text: str, rng: random.Random) -> str:
    return _capitalize(text) + rng.choice(_PREFIX_SEPARATORS) + query


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
