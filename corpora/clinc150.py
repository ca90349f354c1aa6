"""CLINC150 (Larson et al., 2019) as routing examples: does the router leave the host alone?

CLINC150 (``data/clinc150/data_full.json``, CC BY 3.0) is 150 intents of a task-oriented
assistant, 100 train / 20 val / 30 test queries each, plus out-of-scope queries
(``oos_train`` 100, ``oos_val`` 100, ``oos_test`` 1,000) joined here to the split of the same
name. Nearly all of it is what the router must pass through (``chat``); two intents overlap
the experts:

- ``time`` naming a place: expert ``time``, spec the place as the query writes it (the
  longest span :func:`~lazarus_cot_router.experts.places.place_zones` finds that is a curated
  name, or a city's name right after "in"/"for"; "the" and a time-zone word after a place
  dropped: "in the hawaii time zone" is ``hawaii``, "in the eastern timezone" stays
  ``eastern timezone``), answer its IANA zone (resolved by the time expert);
- ``calculator`` asking exactly one binary operation (:func:`label_calculator`): that
  arithmetic expert, spec ``<a> <op> <b>`` with the numbers as a spec writes them ("54,788"
  is ``54788``, "twelve" ``12``, "25 percent" ``25%``), answer computed by the expert.

Every other query's gold is ``chat``, including a ``time`` query naming no place ("what time
is it") and a ``calculator`` query no expert can write (square roots, "30% off 279", chains,
"help me with a math problem"): no expert can execute them, so the router must pass them
through. Each example is tagged ``source:clinc150``, ``intent:<intent>`` (``oos`` for
out-of-scope) and one ``kind:<kind>`` of :data:`KINDS`, so an evaluation can report each
group: the host's false-positive rate is the share of ``other`` and ``oos`` that an expert
takes. Calculator examples also carry ``form:`` tags for how the query writes its numbers.

The labelling rules were written from ``train`` and ``val`` only; ``test`` is converted with
them unchanged.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter

from lazarus_cot_router.experts.base import Example, ExpertError
from lazarus_cot_router.experts.places import place_zones, resolve_place, trim_place
from lazarus_cot_router.experts.vocabulary import CARDINALS

from . import builtin_experts, data_text

PATH = ("clinc150", "data_full.json")
SOURCE_TAG = "source:clinc150"
SPLITS = ("train", "val", "test")
KINDS = ("other", "oos", "time", "time_no_place", "calculator", "calculator_other")
OOS_INTENT = "oos"


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, list[list[str]]]:
    return json.loads(data_text(*PATH))


def queries(split: str) -> tuple[tuple[str, str], ...]:
    """``(query, intent)`` of ``split`` in file order, its out-of-scope queries (intent
    ``oos``) after the in-scope ones."""
    _check(split)
    data = _data()
    return tuple((q, i) for q, i in data[split]) + tuple((q, OOS_INTENT) for q, _ in data[f"oos_{split}"])


def _check(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown CLINC150 split {split!r}; expected one of {SPLITS}")


@functools.lru_cache(maxsize=None)
def _examples(split: str) -> tuple[Example, ...]:
    return tuple(convert(query, intent) for query, intent in queries(split))


def examples(split: str) -> list[Example]:
    """The routing examples of ``split`` (``train``, ``val`` or ``test``), in file order."""
    _check(split)
    return list(_examples(split))


def kind_of(example: Example) -> str:
    """The example's kind (one of :data:`KINDS`), from its ``kind:`` tag."""
    return next(t for t in example.tags if t.startswith("kind:")).removeprefix("kind:")


def counts(split: str) -> Counter:
    """How many examples of ``split`` there are of each kind."""
    return Counter(kind_of(e) for e in examples(split))


def convert(query: str, intent: str) -> Example:
    """The routing example of one CLINC150 query."""
    tags = (SOURCE_TAG, f"intent:{intent}")
    if intent == "time":
        place = time_place(query)
        if place is not None:
            return builtin_experts()["time"].example(query, place, tags + ("kind:time",))
        return Example(query, "chat", "", None, tags + ("kind:time_no_place",))
    if intent == "calculator":
        labelled = label_calculator(query)
        if labelled is not None:
            expert, spec, forms = labelled
            return builtin_experts()[expert].example(query, spec, tags + ("kind:calculator",) + forms)
        return Example(query, "chat", "", None, tags + ("kind:calculator_other",))
    kind = "oos" if intent == OOS_INTENT else "other"
    return Example(query, "chat", "", None, tags + (f"kind:{kind}",))


# --- time: the place a query names --------------------------------------------------------

#: Right before a city's name: "in" or "for", and an optional "the" ("what time is it in
#: honolulu"). A city elsewhere is often a common word that some town is named ("what does it
#: say on the clock": Say, Niger).
_BEFORE_CITY = re.compile(r"\b(?:in|for)\s+(?:the\s+)?$", re.IGNORECASE)


def time_place(query: str) -> str | None:
    """The place a time query names, as the query writes it, or ``None``: the longest span of
    :func:`place_zones` that resolves as a curated name (zone, abbreviation, alias, country,
    state, "City, Region", named zone) anywhere, or as a city right after "in"/"for"; then
    without a leading "the" or a time-zone word after a place
    (:func:`~lazarus_cot_router.experts.places.trim_place`)."""
    found = []
    for span in place_zones(query):
        kind = resolve_place(span)[1]
        if kind == "city" and not any(_BEFORE_CITY.search(query[:m.start()])
                                      for m in re.finditer(re.escape(span), query)):
            continue
        found.append(span)
    if not found:
        return None
    return trim_place(max(found, key=lambda span: (len(span), -query.find(span))))


# --- calculator: one binary operation -----------------------------------------------------

_UNITS = [word for word, value in CARDINALS.items() if int(value) < 20]  # in order: _UNITS[n] is n
_TENS = {word: int(value) for word, value in CARDINALS.items() if 20 <= int(value) < 100}
_SCALES = {word: int(CARDINALS[word]) for word in ("hundred", "thousand")}
_UNIT_WORD = "|".join(_UNITS)
_TENS_WORD = "|".join(_TENS)
#: Number words a calculator query spells a number with: "six", "twenty-five", "a thousand",
#: "three hundred". Anything longer ("1 million twelve hundred") is left to ``calculator_other``.
_WORDS = (rf"(?:(?:{_TENS_WORD})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?|(?:{_UNIT_WORD}))"
          rf"|(?:a|one|two|three|four|five|six|seven|eight|nine) (?:hundred|thousand)")
#: Digits, with thousands separators ("54,788") or not, optional decimals, an optional "$".
_DIGITS = r"\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"
_NUMBER = rf"(?:-|negative )?(?:{_DIGITS}|{_WORDS})(?: dollars)?"
_PERCENT = rf"{_NUMBER}\s*(?:%|percent\b|per cent\b)"

A = rf"(?P<a>{_NUMBER})"
B = rf"(?P<b>{_NUMBER})"
PA = rf"(?P<a>{_PERCENT}|{_NUMBER})"
PB = rf"(?P<b>{_PERCENT}|{_NUMBER})"
#: (expert, pattern): the operation forms of the train and val queries (and of the expert's
#: own train templates); group ``a`` is the spec's first operand, ``b`` its second.
_OPERATIONS = (
    ("add", rf"{A}\s*(?:\+|\bplus\b)\s*{B}"),
    ("add", rf"(?:the )?sum of {A}(?:,? and | plus |\s*\+\s*){B}"),
    ("add", rf"add (?:up )?{A} (?:and|to|plus) {B}"),
    ("add", rf"{A} and {B} added together"),
    ("subtract", rf"{A}\s*(?:-|\bminus\b)\s*{B}"),
    ("subtract", rf"subtract {B} from {A}"),
    ("subtract", rf"take (?:away )?{B} (?:away )?from {A}"),
    ("multiply", rf"{PA}\s*(?:\*|×|\bx\b|(?<=[0-9])x(?=[0-9])|\btimes\b|\bmultiplied by\b)\s*{PB}"),
    ("multiply", rf"multiply {PA} (?:by|and|with|times) {PB}"),
    ("multiply", rf"(?:the )?product of {PA} and {PB}"),
    ("multiply", rf"(?P<a>{_PERCENT}) of {B}"),
    ("divide", rf"{A}\s*(?:/|÷|\bdivided by\b|\bover\b)\s*{B}"),
    ("divide", rf"divide {A} by {B}"),
    ("divide", rf"(?:the )?quotient of {A} and {B}"),
    ("divide", rf"how many times (?:does|do|can|will|would|could) {B} go into {A}"),
)
_COMPILED = tuple((expert, re.compile(pattern)) for expert, pattern in _OPERATIONS)
_SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}

#: Words around the operation that ask for it and nothing else, stripped from the start
#: ("can you tell me what is ...") and the end ("... is", "... equal", "please").
_LEADS = sorted((
    "can you tell me", "could you tell me", "would you tell me", "will you tell me", "please tell me",
    "tell me", "can you please", "could you please", "can you", "could you", "would you", "will you",
    "please", "i need to know", "i want to know", "i would like to know", "i'd like to know", "let me know",
    "do you know", "what is", "what's", "whats", "how much is", "what does", "what", "calculate",
    "compute", "solve", "evaluate", "work out", "figure out", "what do you get if you",
    "what do you get when you", "the answer to", "the result of", "the value of", "how much",
), key=len, reverse=True)
_TAILS = sorted(("please", "for me", "equal", "equals", "is", "thanks", "thank you", "for me please"),
                key=len, reverse=True)


def label_calculator(query: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(expert, spec, form tags)`` when ``query`` asks exactly one binary operation an
    arithmetic expert can write (spec checked to execute), else ``None``. Conservative: a
    query with any other words ("what is the area of a 20 x 20 room"), a chain ("250 times
    118 times 9"), fractions ("1/2 times 5/8"), discounts ("30% off 279") or a number it
    cannot read is ``None``."""
    core = _core(query)
    for expert, pattern in _COMPILED:
        match = pattern.fullmatch(core)
        if not match:
            continue
        left, right = _operand(match["a"]), _operand(match["b"])
        if left is None or right is None:
            return None
        spec = f"{left[0]} {_SYMBOLS[expert]} {right[0]}"
        try:
            builtin_experts()[expert].execute(spec)
        except ExpertError:
            return None
        return expert, spec, tuple(sorted(set(left[1]) | set(right[1])))
    return None


def _core(query: str) -> str:
    """The query, lower case, without the words that only ask (see :data:`_LEADS`)."""
    text = " ".join(query.lower().replace("’", "'").replace("‘", "'").split())
    changed = True
    while changed:
        changed = False
        stripped = text.strip(" ?!.,=:")
        if stripped != text:
            text, changed = stripped, True
        for lead in _LEADS:
            if text.startswith(lead + " ") or text.startswith(lead + ","):
                text, changed = text[len(lead):].lstrip(" ,"), True
                break
        for tail in _TAILS:
            if text.endswith(" " + tail) or text.endswith("," + tail):
                text, changed = text[: -len(tail)].rstrip(" ,"), True
                break
    return text


def _operand(text: str) -> tuple[str, tuple[str, ...]] | None:
    """An operand as a spec writes it, and ``form:`` tags of how the query wrote it."""
    forms = []
    text = text.strip()
    percent = False
    for sign in ("%", "percent", "per cent"):
        if text.endswith(sign):
            text, percent = text[: -len(sign)].strip(), True
            forms.append("form:percent")
            break
    if text.endswith(" dollars"):
        text = text[: -len(" dollars")]
        forms.append("form:currency")
    negative = text.startswith("-") or text.startswith("negative ")
    text = text.removeprefix("-").removeprefix("negative ").strip()
    if negative:
        forms.append("form:negative")
    if text.startswith("$"):
        text = text[1:]
        forms.append("form:currency")
    if "," in text:
        text = text.replace(",", "")
        forms.append("form:thousands")
    if not text[:1].isdigit():
        value = _spelled(text)
        if value is None:
            return None
        text = str(value)
        forms.append("form:number_words")
    return ("-" if negative else "") + text + ("%" if percent else ""), tuple(forms)


def _spelled(text: str) -> int | None:
    """The value of a number written in :data:`_WORDS`."""
    words = text.replace("-", " ").split()
    if len(words) == 2 and words[1] in _SCALES:
        head = 1 if words[0] in ("a", "one") else _value(words[0])
        return None if head is None else head * _SCALES[words[1]]
    if len(words) == 2 and words[0] in _TENS:
        unit = _value(words[1])
        return None if unit is None or not 0 < unit < 10 else _TENS[words[0]] + unit
    return _value(words[0]) if len(words) == 1 else None


def _value(word: str) -> int | None:
    if word in _UNITS:
        return _UNITS.index(word)
    return _TENS.get(word)
