"""Copy-constrained decoding: which partial lines are valid, and the logits
processor that enforces it inside mlx-lm's BatchGenerator."""

from __future__ import annotations

import mlx.core as mx
import pytest

from lazarus_cot_router.constrain import ConstrainedChoice, LineConstraint
from lazarus_cot_router.experts.vocabulary import SpecVocabulary, number_words_in
from lazarus_cot_router.grammar import parse_line
from lazarus_cot_router.plugins import get_experts
from lazarus_cot_router.prompts import target_text
from training.data import generate_split, load_robustness


def constraint_for(query: str, experts=None) -> LineConstraint:
    experts = experts or get_experts()
    return LineConstraint({name: e.spec_vocabulary(query) for name, e in experts.items()}, query)


def test_every_gold_line_is_allowed_at_every_prefix():
    examples = [e for split in ("train", "calib", "heldout") for e in generate_split(split, 400, seed=3)]
    examples += load_robustness()
    for example in examples:
        constraint = constraint_for(example.query)
        line = target_text(example.expert, example.spec)
        for end in range(1, len(line) + 1):
            assert constraint.allows(line[:end]), (example.query, line[:end])


@pytest.mark.parametrize("query, text", [
    ("What time is it in New York?", "time: New New"),  # the loop the free model fell into
    ("How late is it in Yokkaichi at the moment?", "time: Yokkai ->"),  # a truncated copy
    ("Give me the hour in Fujisawa.", "time: FujiW"),
    ("Deduct 89844 from 58853", "subtract: 58844"),  # a digit miscopied
    ("She trades away 30 and keeps the rest", "word_problem: stamps:229"),  # words not in the query
    ("Janet has 229 stamps and trades away 30. How many left?", "word_problem: stamps:229 | -3 "),  # digit dropped
    ("Start at 84290 and go down by 108.73", "start: 84290 ->"),  # no such expert
    ("Tell me a joke", "chat: joke ->"),  # chat takes an empty spec
    ("Tell me a joke", "time: Tokyo ->"),
    ("Arrange dentist (1.5 h) and homework", "schedule: dentist:1.5hr,Hannah"),
    # The expert's grammar: what the copy rule alone let through.
    ("Diego has 259 pretzels, drops 17 and shares among 11", "word_problem: pretzels:17 | +11 +259 |"),
    ("Book gym (2hr) and yoga (1hr) in sequence", "schedule: gym:2hr,sequential:"),
    ("Book gym (2hr) and yoga (1hr) from 9", "schedule: gym:2hr,yoga:1hr | start:start"),
    ("What is 3 times 4?", "multiply: 3 +"),
    # A time spec is a place the query names (or a zone), not any run of its words.
    ("Auf Deutsch bitte - what's the clock in Caxias do Sul", "time: Auf"),
    ("GIVE ME THE HOUR IN Toulouse. SUMMARIZE IT IN A TWEET.", "time: GIVE ME: Toulouse"),
    ("LOCAL TIME Songjiang", "time: Local ->"),
    ("What time is it in Paris?", "time: time ->"),
    ("How much is 91264 shared equally among 622.06?", "divide: 91264 / 622 ->"),  # a number cut short
    # Schedule task names keep the query's case: the plan prints them.
    ("Slot in Tara (0.25 h) and swim (1 h) - in a row", "schedule: tara"),
    # "st" could start the keyword "start", but not where a task name goes.
    ("Slot in Uma (1.25 h) and Stefan (1.25 h) - with no overlap", "schedule: Uma:1.25hr,st"),
    ("GIVE ME THE HOUR IN Toulouse.", "time: Greenwich"),  # a legacy zone link, not the place asked
    ("LOCAL TIME Songjiang", "time: LocalTime"),
    ("LOCAL TIME Songjiang", "time: Africa/Lusaka"),  # a zone, but not the named place's
    ("Arrange piano (0.25 h) and Stefan (1.25 h)", "schedule: piano:0.25hr,Start:"),  # "start" as a name
    # No number in the query: no arithmetic, word problem or schedule (the model once wrote "add:"
    # for a shouted time query, then spaces for want of a number).
    ("GIVE ME THE HOUR IN Toulouse. SUMMARIZE IT IN A TWEET.", "add"),
    ("GIVE ME THE HOUR IN Toulouse. SUMMARIZE IT IN A TWEET.", "schedule:"),
    ("What is 3 times 4?", "multiply:  "),  # a run of spaces is never part of a spec
    ("Grace's purse holds €325 and she saves €27", "word_problem: pounds"),  # € is euros
])
def test_rejects_what_the_free_model_wrote(query, text):
    assert not constraint_for(query).allows(text)


@pytest.mark.parametrize("query, text", [
    ("What time is it in New York?", "time: New York ->"),
    ("What time is it in New York?", "time: America/New_York ->"),  # the place's zone instead of the place
    ("what time is it in new york", "time: New"),  # case-folded
    ("Tom has 20 apples and triples them", "word_problem: apples:20 | *3 ->"),  # number word licenses 3
    ("Tom has 20 apples and qadruples them", "word_problem: apples:20 | *4 ->"),  # ... despite a typo
    ("I have $40 and spend 5", "word_problem: dollars:40 | -5 ->"),
    ("Schedule gym for 30 minutes", "schedule: gym:0.5hr | sequential ->"),
    ("Tell me a joke", "chat: ->"),
    ("Tell me a joke", "chat: -"),
    ("12 and 3", "mul"),
    ("What is five times three?", "multiply: 5 * 3 ->"),  # numbers in words count as numbers
    ("Grace's purse holds €325 and she saves €27", "word_problem: euros:325 | +27 ->"),
    ("Auf Deutsch bitte - what's the clock in Caxias do Sul", "time: Caxias do Sul ->"),
    ("LOCAL TIME SONGJIANG", "time: Songjiang ->"),
    ("How much is 91264 shared equally among 622.06?", "divide: 91264 / 622."),
    ("How much is 91264 shared equally among 622.06?", "divide: 91264 / 622.06 ->"),  # a place in any case
    ("What time is it in Xyzzyville?", "time: Xyzzyville ->"),  # no known place: copied freely
    ("Slot in Tara (0.25 h) and swim (1 h) - in a row", "schedule: Tara:0.25hr,swim:1hr | sequential ->"),
])
def test_allows_valid_lines(query, text):
    assert constraint_for(query).allows(text)


def test_place_spans_are_the_places_a_query_names():
    from lazarus_cot_router.experts.places import place_spans

    spans = place_spans("Auf Deutsch bitte - what's the clock in Caxias do Sul")
    assert "Caxias do Sul" in spans and not {"Auf Deutsch", "Auf", "clock", "in"} & spans
    assert place_spans("What time is it in Paris, France?") >= {"Paris", "France", "Paris, France"}
    assert place_spans("Why do time zones exist?") == frozenset()


def test_continuations_offer_the_named_places():
    constraint = constraint_for("Give me the hour in Toulouse.")
    assert " Toulouse" in constraint.continuations("time:")
    assert "louse" in constraint.continuations("time: Tou")


def test_repeated_query_words_may_repeat_as_often():
    constraint = constraint_for("Zoe had 75 stamps, traded away 31 and collected 31 more")
    assert constraint.allows("word_problem: stamps:75 | -31 +31 ->")
    assert not constraint.allows("word_problem: stamps:75 | -31 +31 -31 ->")


def test_an_expert_without_vocabulary_is_free():
    class Free:
        def spec_vocabulary(self, query):
            return None

    constraint = LineConstraint({"free": None, "chat": SpecVocabulary("empty")}, "hello")
    assert constraint.allows("free: anything at all ->")
    assert not constraint.allows("chat: anything")
    assert Free().spec_vocabulary("x") is None


def test_continuations_finish_the_open_word_or_the_line():
    constraint = constraint_for("How late is it in Yokkaichi at the moment?")
    assert "aichi" in constraint.continuations("time: Yokk")
    assert " ->" in constraint.continuations("time: Yokkaichi")
    assert constraint.continuations("ti") == ["me:"]
    assert constraint.continuations("time: Yokkaichi ->") == []


def test_number_words():
    assert number_words_in("She triples them, then doubles them") == ["3", "2"]
    assert number_words_in("quadrupels") == ["4"]  # one swap
    assert number_words_in("fives and sixes") == []


def test_a_number_word_licenses_its_digits_as_often_as_it_is_written():
    constraint = constraint_for("Zoe has 122 coins, doubles her coins and loses 29.")
    assert constraint.allows("word_problem: coins:122 | *2 -29 ->")
    assert not constraint.allows("word_problem: coins:122 | *29 -2 -2")  # the loop the model fell into


class CharTokenizer:
    """One token per character of a small alphabet, plus a few words."""

    def __init__(self):
        self.vocab = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :-.>|*+/_,") + [" ->", "<eot>"]
        self.ids = {t: i for i, t in enumerate(self.vocab)}

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)

    def encode(self, text, add_special_tokens=False):
        out, i = [], 0
        while i < len(text):
            if text.startswith(" ->", i):
                out.append(self.ids[" ->"])
                i += 3
            else:
                out.append(self.ids[text[i]])
                i += 1
        return out


def run_processor(processor, tokenizer, preferred: str, steps: int) -> str:
    """Greedy decoding where the model always prefers the letters of ``preferred`` in order."""
    context = [0, 1, 2]  # the prompt
    for step in range(steps):
        logits = mx.zeros((1, len(tokenizer.vocab)))
        if step < len(preferred):
            logits[0, tokenizer.ids[preferred[step]]] = 10.0
        out = processor(mx.array(context), logits)
        context.append(int(mx.argmax(out, axis=-1).item()))
    return tokenizer.decode(context[3:])


def test_processor_masks_invalid_tokens_and_keeps_valid_choices():
    tok = CharTokenizer()
    query = "time in Oslo"
    processor = ConstrainedChoice(constraint_for(query), tok, banned=[tok.ids["<eot>"]], top_k=8)
    # The model wants "time: Oslx"; "x" is not valid, so the grammar's "o" wins.
    text = run_processor(processor, tok, "time: Oslx", steps=11)
    assert text.startswith("time: Oslo")
    assert constraint_for(query).allows(text)


def test_processor_leaves_valid_top_choice_untouched():
    tok = CharTokenizer()
    processor = ConstrainedChoice(constraint_for("hello"), tok)
    context = mx.array([0, 1])
    logits = mx.zeros((1, len(tok.vocab)))
    logits[0, tok.ids["c"]] = 5.0
    out = processor(context, logits)
    assert mx.array_equal(out, logits)  # "c" starts "chat:"


def test_tiny_random_model_writes_only_valid_lines(tiny_model_dir):
    """A random model writes garbage; constrained, every line it writes is a
    valid prefix, and finished lines parse to a known expert."""
    from mlx_lm import load

    from lazarus_cot_router.decoding import decode_batch
    from lazarus_cot_router.prompts import encode_prompt, router_system_prompt

    model, tokenizer = load(str(tiny_model_dir))
    experts = get_experts()
    system = router_system_prompt(list(experts.values()))
    queries = ["What time is it in Oslo?", "What is 12 times 7?", "Tell me a joke"]
    prompts = [sum(encode_prompt(tokenizer, system, q), []) for q in queries]
    processors = [ConstrainedChoice(constraint_for(q, experts), tokenizer) for q in queries]
    outs = decode_batch(model, tokenizer, prompts, max_tokens=24, logits_processors=processors)
    free = decode_batch(model, tokenizer, prompts, max_tokens=24)
    assert not all(constraint_for(q).allows(o.text) for q, o in zip(queries, free))  # the check has teeth
    for query, out in zip(queries, outs):
        assert constraint_for(query).allows(out.text), repr(out.text)
        if out.finish == "arrow":
            assert parse_line(out.text).expert in experts
