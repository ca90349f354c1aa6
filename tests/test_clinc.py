"""The CLINC150 converter: splits, kinds, gold specs that execute, the calculator labeller.

Only ``train`` and ``val`` queries are looked at here (the rules were written from them);
``test`` is checked for its shape alone.
"""

from __future__ import annotations

from collections import Counter

import pytest

from corpora import clinc150
from lazarus_cot_router.experts.builtin import default_experts
from lazarus_cot_router.experts.places import resolve_zone

EXPERTS = {e.name: e for e in default_experts()}
ARITHMETIC = ("add", "subtract", "multiply", "divide")


@pytest.fixture(scope="module", params=clinc150.SPLITS)
def split_examples(request):
    return request.param, clinc150.examples(request.param)


def test_split_sizes_and_out_of_scope_joined(split_examples):
    split, examples = split_examples
    in_scope = {"train": 15000, "val": 3000, "test": 4500}[split]
    out_of_scope = {"train": 100, "val": 100, "test": 1000}[split]
    assert len(examples) == in_scope + out_of_scope
    intents = Counter(next(t for t in e.tags if t.startswith("intent:")) for e in examples)
    assert intents["intent:oos"] == out_of_scope
    assert len(intents) == 151 and set(intents.values()) == {in_scope // 150, out_of_scope}
    kinds = clinc150.counts(split)
    assert set(kinds) <= set(clinc150.KINDS)
    assert kinds["oos"] == out_of_scope and kinds["other"] == in_scope - 2 * (in_scope // 150)
    assert kinds["time"] + kinds["time_no_place"] == in_scope // 150
    assert kinds["calculator"] + kinds["calculator_other"] == in_scope // 150


def test_every_example_is_tagged(split_examples):
    _, examples = split_examples
    for example in examples:
        assert example.tags[0] == clinc150.SOURCE_TAG
        assert sum(t.startswith("intent:") for t in example.tags) == 1
        assert sum(t.startswith("kind:") for t in example.tags) == 1


def test_gold_lines_execute(split_examples):
    _, examples = split_examples
    for example in examples:
        kind = clinc150.kind_of(example)
        if kind == "time":
            assert example.expert == "time"
            assert example.spec.lower() in example.query.lower()
            assert resolve_zone(example.spec) == example.answer == EXPERTS["time"].answer(example.spec)
        elif kind == "calculator":
            assert example.expert in ARITHMETIC
            assert EXPERTS[example.expert].execute(example.spec) == example.answer
        else:
            assert (example.expert, example.spec, example.answer) == ("chat", "", None), example


def test_dev_counts_by_kind():
    # Written from train and val only (test is converted with the same rules, unseen).
    assert clinc150.counts("train") == Counter(other=14800, oos=100, time=62, time_no_place=38,
                                               calculator=52, calculator_other=48)
    assert clinc150.counts("val") == Counter(other=2960, oos=100, time=15, time_no_place=5,
                                             calculator=10, calculator_other=10)


def test_examples_are_cached_and_copied():
    first = clinc150.examples("val")
    first.clear()
    assert len(clinc150.examples("val")) == 3100
    assert clinc150.examples("val") == clinc150.examples("val")


def test_unknown_split():
    with pytest.raises(ValueError):
        clinc150.examples("heldout")


@pytest.mark.parametrize("query, place", [
    ("what time is it in las vegas, nv", "las vegas, nv"),
    ("what time is it in glenwood springs, co", "glenwood springs, co"),
    ("what time is it in punta gorda, florida", "punta gorda, florida"),
    ("i need to know the current time in the central timezone", "central timezone"),
    ("what is the exact time right now in the hawaii time zone", "hawaii"),
    ("in the mst time zone, what time is it right now", "mst"),
    ("what is the current est time", "est"),
    ("what time is it in the pacific standard timezone", "pacific standard timezone"),
    ("what time is it on the pacific coast right now", "pacific coast"),
    ("what is the current time in mexico city", "mexico city"),
    ("what time is it in north korea", "north korea"),
    ("what time is it in russia", "russia"),
    ("what's the time in anchorage timezone", "anchorage"),
    ("in tokyo, what time is it", "tokyo"),
    ("what time is it now in michigan", "michigan"),
    # Synthetic.
    ("what time is it in the usa", "usa"),
    ("what time is it in Paris, Texas?", "Paris, Texas"),
])
def test_time_place(query, place):
    assert clinc150.time_place(query) == place


@pytest.mark.parametrize("query", [
    "what time is it", "what is the time right now", "what does it say on the clock",
    "what time is it in daniel boone national forest timezone",  # "forest": a town, not after "in"
    "what time do you have on your watch",
])
def test_time_without_a_place(query):
    assert clinc150.time_place(query) is None
    assert clinc150.kind_of(clinc150.convert(query, "time")) == "time_no_place"


@pytest.mark.parametrize("query, expert, spec", [
    # From train and val.
    ("what is 7 x 7", "multiply", "7 * 7"),
    ("please add 456 and 781 for me", "add", "456 + 781"),
    ("what is the sum of 3 plus 5", "add", "3 + 5"),
    ("what is 20+ 5", "add", "20 + 5"),
    ("what is 25 percent of 6999", "multiply", "25% * 6999"),
    ("can you tell me what is 18 percent of $2500", "multiply", "18% * 2500"),
    ("what is 20% of a thousand", "multiply", "20% * 1000"),
    ("subtract 100 from 12", "subtract", "12 - 100"),
    ("what is six divided by 16", "divide", "6 / 16"),
    ("how many times can 12 go into 600", "divide", "600 / 12"),
    ("what’s the answer to 5-6=", "subtract", "5 - 6"),
    ("what does 6 x 1 equal", "multiply", "6 * 1"),
    ("i need to know what 75 plus 43 is", "add", "75 + 43"),
    ("what do you get if you divide 3 by 2", "divide", "3 / 2"),
    ("multiply 7 and 42", "multiply", "7 * 42"),
    ("what is seventeen plus three", "add", "17 + 3"),
    # Synthetic edge cases.
    ("What is 54,788 plus 1,200?", "add", "54788 + 1200"),
    ("what is negative 5 times 3", "multiply", "-5 * 3"),
    ("what is -7.5 minus -2", "subtract", "-7.5 - -2"),
    ("what is twenty-five times four", "multiply", "25 * 4"),
    ("what is 12.5% of 80", "multiply", "12.5% * 80"),
    ("what is 15 % of three hundred", "multiply", "15% * 300"),
    ("what's 100 over 8?", "divide", "100 / 8"),
    ("3x4", "multiply", "3 * 4"),
    ("take 15 away from 40", "subtract", "40 - 15"),
    ("what is the product of 9 and 8", "multiply", "9 * 8"),
    ("calculate 18 divided by 45 please", "divide", "18 / 45"),
])
def test_label_calculator(query, expert, spec):
    labelled = clinc150.label_calculator(query)
    assert labelled is not None and labelled[:2] == (expert, spec)
    example = clinc150.convert(query, "calculator")
    assert (example.expert, example.spec, clinc150.kind_of(example)) == (expert, spec, "calculator")
    assert example.answer == EXPERTS[expert].execute(spec)


@pytest.mark.parametrize("query", [
    # From train and val.
    "what is 8 factorial", "can you tell me what 30% off 279 is", "what is 60 percent off of 350 dollars",
    "what is an 18 percent tip on 20 dollars", "what is 3/4 of 18", "what is the square root of 144",
    "will you help me with a math problem", "what is 250 times 118 times 9", "what is 78 times 81 minus 5",
    "what is 1 million twelve hundred divided by 400 thousand", "what is 10 to the 12th power",
    "if i win 200000 how do i split it 7 ways", "what is 005 percent of 1 percent", "what is 1/2 times 5/8",
    "what is 80980 + 098098 + 80980 + 1243", "what is the area of a 20 x 20 room",
    "how many square feet is a 13 by 74 room", "what is the sum of 3, 7, 9, and 24",
    "can you factor x squared plus 4 x plus 4", "is 126 divisible by 8", "can you subract 36 from 5",
    # Synthetic edge cases.
    "what is 5 / 0", "what is 1000000000000000 times 1000", "what is 3 plus", "plus 3 and 4",
    "what is 3 plus 4 plus 5", "what is x plus 5", "what is 7 percent", "what is 50% plus 10",
    "what is 2 to the power of 8", "what is 3 times 4 dollars and 5 cents", "what is 15% of 3 hundred",
])
def test_calculator_other(query):
    assert clinc150.label_calculator(query) is None
    example = clinc150.convert(query, "calculator")
    assert (example.expert, example.spec, clinc150.kind_of(example)) == ("chat", "", "calculator_other")


def test_form_tags():
    assert clinc150.label_calculator("what is 54,788 plus twelve")[2] == ("form:number_words", "form:thousands")
    assert clinc150.label_calculator("what is 18 percent of $2500")[2] == ("form:currency", "form:percent")
    assert clinc150.label_calculator("what is 4 + 4")[2] == ()


def test_other_intents_pass_through():
    for intent in ("weather", "oos", "timezone", "alarm"):
        example = clinc150.convert("what time is it in tokyo and what is 3 plus 4", intent)
        assert (example.expert, example.spec) == ("chat", "")
        assert clinc150.kind_of(example) == ("oos" if intent == "oos" else "other")
