"""Copy-constrained decoding: which partial lines are valid, and the logits
processor that enforces it inside mlx-lm's BatchGenerator."""

from __future__ import annotations

import mlx.core as mx
import pytest

from lazarus_cot_router.constrain import LineConstraint
from lazarus_cot_router.constrained_choice import ConstrainedChoice, line_masked
from lazarus_cot_router.experts.vocabulary import SpecVocabulary, number_words_in, query_numbers
from lazarus_cot_router.grammar import parse_line
from lazarus_cot_router.plugins import get_experts
from lazarus_cot_router.prompts import target_text
from training.data import generate_split
from training.query_files import load_robustness


def constraint_for(query: str, experts=None, mode: str = "full") -> LineConstraint:
    experts = experts or get_experts()
    return LineConstraint({name: e.spec_vocabulary(query) for name, e in experts.items()}, query, mode)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.slow
def test_every_gold_line_is_allowed_at_every_prefix(seed):
    examples = [e for split in ("train", "calib", "heldout") for e in generate_split(split, 400, seed=seed)]
    examples += load_robustness()
    for example in examples:
        generic, full = constraint_for(example.query, mode="generic"), constraint_for(example.query)
        line = target_text(example.expert, example.spec)
        for end in range(1, len(line) + 1):
            # leads_somewhere is allows plus a look at how the open word can end
            assert generic.leads_somewhere(line[:end]), (example.query, line[:end])
            # Full decoding finishes a line without its ordering rules where they lead nowhere.
            assert full.leads_somewhere(line[:end]) or full.relaxed().leads_somewhere(line[:end]), line[:end]


@pytest.mark.slow
def test_every_public_training_line_is_allowed():
    import corpora.clinc150
    import corpora.mawps

    experts = get_experts()
    examples = corpora.mawps.examples("train") + corpora.clinc150.examples("train")
    refused = [e.query for e in examples
               if not LineConstraint.for_experts(experts, e.query).allows(target_text(e.expert, e.spec))]
    # Three MAWPS problems use a number more often than they write it ("4 | +4 *6" for "reads
    # 4 books every Monday and Tuesday"): the copy constraint takes each as often as it is written.
    assert len(refused) <= 3, refused


def test_a_word_is_begun_only_where_a_query_word_can_finish_it():
    constraint = constraint_for("Schedule Tara (2 hours) and Uma (3 hours)", mode="generic")
    assert constraint.leads_somewhere("schedule: Tara:2hr,U")
    assert not constraint.leads_somewhere("schedule: Tara:2hr,Z")  # no query word starts with "Z"
    assert not constraint.leads_somewhere("schedule: Tara:2hr,h")  # "hours" is written as the unit
    assert constraint.leads_somewhere("schedule: Tara:2hr,Uma:3hr | no_overlap ->")


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
    # ... nor a tab, nor a space where the place goes on without one (the router wrote
    # "time: alaska " and then tabs until cut off).
    ("What is the current time in alaskan time zone?", "time: alaska \t"),
    ("What is the current time in alaskan time zone?", "time: alaska "),
    ("What is 3 times 4?", "multiply: 3\t*"),
    ("Tell me a joke", "chat: \t"), ("Tell me a joke", "chat:   "),  # an empty spec no more than one
    ("Grace's purse holds €325 and she saves €27", "word_problem: pounds"),  # € is euros
    # A start is not a stated duration nor an answer's size (the trained router wrote both).
    ("Arrange 2 hours of swim and 1 hour of Quinn, nothing at the same time",
     "schedule: swim:2hr | no_overlap,start:1"),
    # ... and denied one, wrote "no_overlap" until cut off: each kind of constraint at most once.
    ("Arrange 2 hours of swim, no overlap", "schedule: swim:2hr | no_overlap, no_overlap"),
    ("Arrange 2 hours of swim from 9, no overlap", "schedule: swim:2hr | start:9, no_overlap, start:9"),
])
def test_rejects_what_the_free_model_wrote(query, text):
    assert not constraint_for(query).allows(text)


@pytest.mark.parametrize("query, text", [
    ("What time is it in New York?", "time: New York ->"),
    ("What time is it in New York?", "time: America/New_York ->"),  # the place's zone instead of the place
    ("what time is it in new york", "time: New"),  # case-folded
    ("Tom has 20 apples and triples them", "word_problem: apples:20 | *3 ->"),  # number word licenses 3
    ("I have $40 and spend 5", "word_problem: dollars:40 | -5 ->"),
    ("Schedule gym for 30 minutes", "schedule: gym:30min | sequential ->"),
    ("Tell me a joke", "chat: ->"),
    ("Tell me a joke", "chat: -"),
    ("12 and 3", "mul"),
    ("What is five times three?", "multiply: 5 * 3 ->"),  # numbers in words count as numbers
    ("Grace's purse holds €325 and she saves €27", "word_problem: euros:325 | +27 ->"),
    ("Auf Deutsch bitte - what's the clock in Caxias do Sul", "time: Caxias do Sul ->"),
    ("LOCAL TIME SONGJIANG", "time: Songjiang ->"),
    ("How much is 91264 shared equally among 622.06?", "divide: 91264 / 622."),
    ("How much is 91264 shared equally among 622.06?", "divide: 91264 / 622.06 ->"),  # a place in any case
    ("Slot in Tara (0.25 h) and swim (1 h) - in a row", "schedule: Tara:0.25hr,swim:1hr | sequential ->"),
    ("Put groceries lasting 2 hours and Xavier lasting 1 hour in succession, beginning at 15",
     "schedule: groceries:2hr,Xavier:1hr | sequential,start:15 ->"),
    ("Book yoga for one hour from 8:30", "schedule: yoga:1hr | start:8:30 ->"),
    ("Book yoga for one hour from 8:30, in a row, no overlap",
     "schedule: yoga:1hr | start:8:30, sequential,no_overlap ->"),
])
def test_allows_valid_lines(query, text):
    assert constraint_for(query).allows(text)


def test_place_spans_are_the_places_a_query_names():
    from lazarus_cot_router.experts.places import place_zones

    def place_spans(text):
        return frozenset(place_zones(text))

    spans = place_spans("Auf Deutsch bitte - what's the clock in Caxias do Sul")
    assert "Caxias do Sul" in spans and not {"Auf Deutsch", "Auf", "clock", "in"} & spans
    assert place_spans("What time is it in Paris, France?") >= {"Paris", "France", "Paris, France"}
    assert place_spans("Why do time zones exist?") == frozenset()
    # A name's own final apostrophe is kept as written (a quoting one is not).
    assert "Homyel'" in place_spans("Tell me the time in Homyel'. - keep it short")
    assert place_spans("What's the time in 'Tokyo'?") == {"Tokyo"}


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


def test_continuations_after_a_space_do_not_write_it_again():
    constraint = constraint_for("what time is it in pacific standard time")
    assert "standard time" in constraint.continuations("time: pacific ")
    assert " standard time" not in constraint.continuations("time: pacific ")


def test_number_words():
    assert number_words_in("She triples them, then doubles them") == ["3", "2"]
    assert number_words_in("what is seventeen plus three, times a dozen") == ["17", "3", "12"]
    assert number_words_in("There, right now, he threw the eighth weight") == []
    assert number_words_in("quadrupels, fives and sixes") == []  # words as written, no guessed typos
    assert number_words_in("-75.9 over 490, double-check your answer") == []
    assert number_words_in("twenty-five, a one-way trip for two") == ["20", "5", "2"]


def test_a_query_that_names_no_place_is_no_time_request():
    constraint = constraint_for("What time is it in Xyzzyville?", mode="generic")
    assert "time:" not in constraint.heads and "chat:" in constraint.heads
    assert "time:" in constraint_for("What time is it in Oslo?", mode="generic").heads


def test_a_number_word_licenses_its_digits_as_often_as_it_is_written():
    constraint = constraint_for("Zoe has 122 coins, doubles her coins and loses 29.")
    assert constraint.allows("word_problem: coins:122 | *2 -29 ->")
    assert not constraint.allows("word_problem: coins:122 | *29 -2 -2")  # the loop the model fell into


class CharTokenizer:
    """One token per character of a small alphabet, plus a few words."""

    def __init__(self):
        self.vocab = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :-.>|*+/_,()%") + [" ->", "<eot>"]
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


def test_a_step_with_no_number_left_to_copy_leads_nowhere():
    # Every number of the query is used: an operator would wait for a number forever.
    query = "Noah starts with 27 tangerines. Then he triples his tangerines. How many are left?"
    constraint = constraint_for(query, mode="generic")
    assert constraint.leads_somewhere("word_problem: tangerines:27 | *3 ")
    assert constraint.leads_somewhere("word_problem: tangerines:27 | *3 -")  # the arrow's first character
    assert not constraint.leads_somewhere("word_problem: tangerines:27 | *3 +")
    assert not constraint.leads_somewhere("word_problem: tangerines:27 | *3 +(")
    assert constraint.leads_somewhere("word_problem: tangerines:27 | *")  # 3 is left
    # Between words a spec may need several punctuation characters before the next word.
    assert constraint_for("Amara keeps 12 lollipops and donates 8.", mode="generic").leads_somewhere(
        "word_problem: lollipops:12 ")


def test_processor_masks_invalid_tokens_and_keeps_valid_choices():
    tok = CharTokenizer()
    query = "time in Oslo"
    processor = ConstrainedChoice(constraint_for(query), tok, banned=[tok.ids["<eot>"]], top_k=8)
    # The model wants "time: Oslx"; "x" is not valid, so the grammar's "o" wins.
    text = run_processor(processor, tok, "time: Oslx", steps=11)
    assert text.startswith("time: Oslo")
    assert constraint_for(query).allows(text)
    # The share of the model's probability the constraint took away: at least all of "x"'s.
    e = float(mx.exp(mx.array(10.0)).item())
    assert e / (e + len(tok.vocab) - 1) <= processor.masked < 1.0


def test_a_dead_end_under_the_numbers_rule_is_finished_without_it():
    query = "Plan my day: gym (1hr), yoga (2hr) and Bo (3hr), no overlap"
    dropped = "schedule: gym:1hr,yoga:2hr | no_overlap ->"  # a task dropped: no way to use all durations
    assert not constraint_for(query).allows(dropped)
    assert constraint_for(query).relaxed().allows(dropped)
    # One number only: under the rule, "apples:20" can take no step, so nothing may follow it.
    query = "Tom has 20 apples."
    tok = CharTokenizer()
    processor = ConstrainedChoice(constraint_for(query), tok, banned=[tok.ids["<eot>"]], top_k=8)
    assert not any(processor.valid(tok.encode("word_problem: apples:20 "), t) for t in range(len(tok.vocab)))
    text = run_processor(processor, tok, "word_problem: apples:20 | -", steps=27)
    # Relaxed, "apples:20" still has no number left for a step: the line ends there (the
    # rewriter passes the query through) instead of writing a step with nothing to copy.
    assert text.startswith("word_problem: apples:20<eot>"), text
    assert processor.dead and not processor.relax()  # already relaxed


class _NoWayOn:
    """A constraint nothing can continue, relaxed or not."""

    can_relax = False

    def leads_somewhere(self, text):
        return False

    def continuations(self, text):
        return []


def test_a_line_nothing_keeps_valid_ends_at_once():
    # Decoded freely, such a line ran to the token limit ("schedule: Tara:2hr, POR:3.5hr,EN: 16:30 |
    # no_overlap,start:16:30 | no_overlap,...") or executed what the model made up ("add: 2 + 4" for
    # a request for code): it ends where it stands, and the rewriter passes the query through.
    tok = CharTokenizer()
    eot = tok.ids["<eot>"]
    processor = ConstrainedChoice(_NoWayOn(), tok, banned=[eot])
    text = run_processor(processor, tok, "x" * 40, steps=40)
    assert text.startswith("<eot>"), text
    assert processor.dead
    # Without a stop token to end it with, the model's own choice stands.
    assert run_processor(ConstrainedChoice(_NoWayOn(), tok), tok, "x" * 40, steps=40) == "x" * 40


def test_the_step_past_a_finished_line_leaves_it_alive():
    # mlx-lm's generator computes one token past the arrow before the decoder drops the
    # sequence; no token is valid there, and that must not end the finished line as a dead end.
    tok = CharTokenizer()
    processor = ConstrainedChoice(constraint_for("What is 2 + 3?"), tok, banned=[tok.ids["<eot>"]], top_k=8)
    line = "add: 2 + 3 ->"
    assert run_processor(processor, tok, line + "x", steps=len(line) + 1) == line + "x"
    assert not processor.dead


def test_a_number_copied_without_the_minus_the_query_writes_gets_it():
    tok = CharTokenizer()
    query = "EXPLAIN LIKE I'M FIVE: 400 LESS -37.9"
    processor = ConstrainedChoice(constraint_for(query, mode="generic"), tok, banned=[tok.ids["<eot>"]], top_k=8)
    context = [0, 1, 2]  # the prompt

    def step(wants: str, runner_up: str = "5") -> str:
        logits = mx.zeros((1, len(tok.vocab)))
        logits[0, tok.ids[wants]] = 10.0
        logits[0, tok.ids[runner_up]] = 9.0  # "5" of "FIVE" is valid, but not what the model meant
        chosen = tok.vocab[int(mx.argmax(processor(mx.array(context), logits), axis=-1).item())]
        context.append(tok.ids[chosen])
        return chosen

    assert "".join(step(c) for c in "subtract: 400 - ") == "subtract: 400 - "
    assert step("3") == "-"
    assert processor.masked < 0.5  # the number is the model's choice: not a line forced on it
    assert step("3") == "3"
    assert not processor.dead
    # Only a number the query writes with its minus: no step operator is chosen for the model.
    wp = ConstrainedChoice(constraint_for("Tom has 20 apples and gives away 5.", mode="generic"), tok)
    assert wp.minus_before(tok.encode("word_problem: apples:20 | "), tok.ids["5"]) is None


class SplitTokenizer(CharTokenizer):
    """CharTokenizer plus tokens that split "Oslo" two ways; ``encode`` takes the longest
    token (the canonical split, " Oslo")."""

    WORDS = (" Oslo", " Os", " ->")

    def __init__(self):
        super().__init__()
        self.vocab += [" Oslo", " Os"]
        self.ids = {t: i for i, t in enumerate(self.vocab)}

    def encode(self, text, add_special_tokens=False):
        out, i = [], 0
        while i < len(text):
            word = next((w for w in self.WORDS if text.startswith(w, i)), text[i])
            out.append(self.ids[word])
            i += len(word)
        return out


class ScriptedModel:
    """A language model whose logits at each position depend on the line written so far: it
    spells "time:", then prefers the split " Os" a little over " Oslo", and after " Os",
    a split it was never taught, wants "x"."""

    PROMPT = 3

    def __init__(self, tok):
        self.tok = tok

    def scores(self, line: str) -> dict[str, float]:
        if len(line) < len("time:"):
            return {"time:"[len(line)]: 10.0}
        return {"time:": {" Os": 3.0, " Oslo": 2.5}, "time: Os": {"x": 10.0, "l": 0.5},
                "time: Osl": {"o": 10.0}, "time: Oslo": {" ->": 10.0}}.get(line, {})

    def __call__(self, inputs, cache=None):
        ids = inputs[0].tolist()
        rows = []
        for t in range(len(ids)):
            row = [0.0] * len(self.tok.vocab)
            line = self.tok.decode(ids[self.PROMPT:t + 1]) if t + 1 >= self.PROMPT else None
            for token, score in (self.scores(line) if line is not None else {}).items():
                row[self.tok.ids[token]] = score
            rows.append(row)
        return mx.array([rows])


def test_a_line_is_judged_again_on_its_canonical_tokens():
    tok = SplitTokenizer()
    model = ScriptedModel(tok)
    processor = ConstrainedChoice(constraint_for("time in Oslo"), tok, banned=[tok.ids["<eot>"]], top_k=16)
    context = [0, 1, 2]
    while not tok.decode(context[3:]).endswith("->") and len(context) < 30:
        logits = model(mx.array([context]))[:, -1, :]
        context.append(int(mx.argmax(processor(mx.array(context), logits), axis=-1).item()))
    line = tok.decode(context[3:])
    assert line == "time: Oslo ->"
    assert processor.masked > 0.99  # after the split " Os" the model wanted "x": "l" was forced
    # Written as training writes it (" Oslo"), the same line masks nothing: the valid " Os"
    # ranked above " Oslo" is another split of the same text, not a line the model preferred.
    judge = ConstrainedChoice(constraint_for("time in Oslo"), tok, banned=[tok.ids["<eot>"]], top_k=16)
    assert line_masked(model, tok, None, context[:3], line, judge) < 0.01


def test_a_line_the_model_did_not_want_stays_masked_on_its_canonical_tokens():
    tok = SplitTokenizer()
    model = ScriptedModel(tok)
    judge = ConstrainedChoice(constraint_for("time in Oslo"), tok, banned=[tok.ids["<eot>"]], top_k=16)
    # "chat: ->": after "c" the model still spells "time:" ("i"), which no line goes on with.
    assert line_masked(model, tok, None, [0, 1, 2], "chat: ->", judge) > 0.99


def test_processor_leaves_valid_top_choice_untouched():
    tok = CharTokenizer()
    processor = ConstrainedChoice(constraint_for("hello"), tok)
    context = mx.array([0, 1])
    logits = mx.zeros((1, len(tok.vocab)))
    logits[0, tok.ids["c"]] = 5.0
    out = processor(context, logits)
    assert mx.array_equal(out, logits)  # "c" starts "chat:"
    assert processor.masked == 0.0


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


# What the trained 135M router wrote on held-out word problems and schedules: a dropped, reordered
# or invented step, a step word with the wrong operator, a dropped task or start time.
@pytest.mark.parametrize("query, line", [
    ("Diego's tin holds 364 muffins. Over the week he hands out 36, throws away 35, quadruples his muffins "
     "and splits them equally among 9 friends. What does each friend receive?", "word_problem: muffins:364 | -35"),
    ("Starting with 274 crayons, Grace wins 15 at the fair, quadruples her crayons and sells the rest for "
     "$14 each. What are her total earnings?", "word_problem: crayons:274 | +15 *4 ->"),
    ("Henry's tin holds 263 muffins. Over the week he quadruples his muffins.", "word_problem: muffins:263 | *4 *"),
    ("Use bullet points. Starting with 64 muffins, Mei buys 15 more, throws away 28 that went bad, doubles her "
     "muffins and sells every remaining one at $10 apiece.", "word_problem: muffins:15 | +28 *10"),
    ("Slot in Uma (1.25 h), Walter (0.75 h), gardening (0.25 h) and Stefan (1.25 h) - with no overlap",
     "schedule: Uma:1.25hr,Walter:0.75hr,Stefan:1.25hr | no_overlap ->"),
    ("Help me organize my afternoon: Rosa (1.25 h) and piano (1 h), with the first one at 16.",
     "schedule: Rosa:1.25hr,piano:1hr | sequential ->"),
    ("Bo has 303 beads, receives 24 and misplaces 33.", "word_problem: beads:303 | +24 - -"),
    # A duration is a stated one ("from 16:30" is no "16hr"), and a name has no digits ("your-4hr").
    ("Arrange Stefan lasting 1 hour and standup lasting 2 hours, so nothing overlaps and from 16:30 on",
     "schedule: Stefan:1hr,overlaps:16hr"),
    ("Arrange Xavier lasting 1 hour and Yara lasting 4 hours for your team", "schedule: Xavier:1hr,your-4hr"),
    # A number word is copied once, as a word or as the number it spells ("one" was a task of 1 hour),
    # and no part of a hyphenated name is a grammar word ("in-start-start-..." until cut off).
    ("Schedule Nathan: 1hr and Bob: 1hr, one after the other and from 12:30. Answer in french",
     "schedule: Nathan:1hr,Bob:1hr,one:1"),
    ("Schedule Nathan: 1hr and Bob: 1hr, one after the other and from 12:30. Answer in french",
     "schedule: Nathan:1hr,Bob:1hr,from in-start"),
    # An operand is signed only where the query signs that number.
    ("How much is -785.75 shared equally among 36644?", "divide: -785.75 / -36644"),
    ("What is 10 - 3?", "subtract: -10"),
    # "There" is not "three", nor "right" "eight": no number to start from.
    ("There are 180 muffins in Zoe's tin. She is given 15 by a neighbor.", "word_problem: muffins:3"),
    ("There are 180 muffins in Zoe's tin right now. She is given 15.", "word_problem: muffins:180 | +8"),
    # The "|" of a schedule comes after every stated duration (nothing after it can hold one): a
    # router that wrote it a task early dropped the task.
    ("PUT TOGETHER A TIMETABLE WITH groceries LASTING 0.25 HOURS AND Tara LASTING 4 HOURS, WITH no overlap",
     "schedule: groceries:0.25hr |"),
    # A task name is words, none of them a grammar word: denied its "|", the router wrote one long name.
    ("Arrange groceries lasting 0.25 hours and Tara lasting 4 hours, with no overlap",
     "schedule: groceries:0.25hr,Tara lasting 4hr"),
    ("Arrange groceries lasting 0.25 hours and Tara lasting 4 hours, with no overlap",
     "schedule: groceries:0.25hr,Tara - no_overlap"),
    # A schedule lists the durations in the request's order ("Quinn:0.25hr,Xavier:0.25hr" swapped
    # Xavier's 1.5 for Walter's 0.25) ...
    ("Put together a timetable with 3.5 hours of Stefan, 0.25 hours of Quinn, 1.5 hours of Xavier and "
     "0.25 hours of Walter, beginning at 16:30", "schedule: Stefan:3.5hr,Quinn:0.25hr,Xavier:0.25"),
    ("Slot in review lasting 1.25 hours, Rosa lasting 1.25 hours and piano lasting 2 hours - with no overlap",
     "schedule: Rosa:1.25hr,review:1"),  # ... and the names too
    ("Put together a timetable with standup lasting 3.5 hours and homework lasting 0.25 hours, non-overlapping",
     "schedule: standup:3.5hr,hours:"),
])
def test_numbers_rule_rejects_dropped_and_reordered_steps(query, line):
    assert not constraint_for(query).allows(line)


@pytest.mark.parametrize("query, line", [
    # A number before the start (an instruction) or in a sentence the spec leaves out may be skipped.
    ("Keep it under 10 words. Tom has 20 apples and eats 3. How many are left?", "word_problem: apples:20 | -3 ->"),
    ("Tom has 20 apples and eats 3. How many are left? Answer in 2 sentences.", "word_problem: apples:20 | -3 ->"),
    # "one" in "every remaining one" is no step; "triples" is, and only as "*3".
    ("Ann has 12 pens, triples them and sells every remaining one at $2 apiece.",
     "word_problem: pens:12 | *3 *2 ->"),
    ("Ann has 12 pens and halves them.", "word_problem: pens:12 | /2 ->"),
    # "Double-check" is an instruction, not a step.
    ("Double-check your answer - At first, Omar owns 514 oranges. He drops 8 and buys 5 more.",
     "word_problem: oranges:514 | -8 +5 ->"),
    ("Starting at 10, schedule gym (1hr) and yoga (2hr)", "schedule: gym:1hr,yoga:2hr | start:10 ->"),
    # A start hour is still to come after the "|".
    ("Help me organize my afternoon: Rosa lasting 1.5 hours and Stefan lasting 1.25 hours, kicking off at 14.",
     "schedule: Rosa:1.5hr,Stefan:1.25hr | start:14 ->"),
    ("Ann has 12 pens and sells the rest for $2 each.", "word_problem: pens:12 | *2 ->"),
    ("How much is -785.75 shared equally among 36644?", "divide: -785.75 / 36644 ->"),
    ("Arrange Stefan lasting 1 hour and check-in lasting 2 hours from 16:30",
     "schedule: Stefan:1hr,check-in:2hr | start:16:30 ->"),
    ("What's 10200 split -846.28 ways?", "divide: 10200 / -846.28 ->"),
    ("What is negative 5 times -5?", "multiply: -5 * -5 ->"),
    ("There are 366 pretzels in Victor's bag. He drops 24 and packs them equally into 7 bags.",
     "word_problem: pretzels:366 | -24 /7 ->"),
    # No number before the noun the spec counts ("€460 in Henry's purse"): any start.
    ("There are €460 in Henry's purse. He quadruples his money and is given €38 by a neighbor.",
     "word_problem: euros:460 | *4 +38 ->"),
    ("Schedule gym (1hr) and yoga (2hr), no overlap. Keep it under 10 words.",
     "schedule: gym:1hr,yoga:2hr | no_overlap ->"),
    # A verb's number may be the start; a word the spec writes as a keyword may still name a task as
    # often as the query writes it besides ("back" of "back to back").
    ("Kwame got 30 apples yesterday. Today he finds 5.", "word_problem: apples:30 | +5 ->"),
    ("Schedule back massage (1h) and lunch (2h), back to back",
     "schedule: back massage:1hr,lunch:2hr | sequential ->"),
    # "the first one at 13" states no duration of 1 hour.
    ("Arrange baking (2.5 hours), tennis (1 hour) and drawing (2.25 hours), with the first one at 8:30",
     "schedule: baking:2.5hr,tennis:1hr,drawing:2.25hr | start:8:30 ->"),
])
def test_numbers_rule_allows_what_the_query_leaves_out(query, line):
    assert constraint_for(query).allows(line)


def test_continuations_finish_an_arrow_begun_as_a_minus():
    constraint = constraint_for("Henry's tin holds 263 muffins. Over the week he quadruples his muffins.")
    assert constraint.allows("word_problem: muffins:263 | *4 -")
    assert ">" in constraint.continuations("word_problem: muffins:263 | *4 -")


def test_query_numbers_mark_required_numbers_and_sentences():
    from lazarus_cot_router.experts.vocabulary import query_numbers

    found = query_numbers("Ann has 12 pens, triples them and sells every remaining one at $2. Answer in 3 words!")
    assert [(sorted(n.spellings), n.required, n.sentence, n.after) for n in found] == [
        (["12"], True, 0, "pens"), (["3"], False, 0, "them"), (["1"], False, 0, "at"), (["2"], True, 0, "answer"),
        (["3"], True, 1, "words")]


# -- generic decoding --------------------------------------------------------------------------


def test_generic_mode_keeps_grammar_and_copying_but_no_ordering_rules():
    query = "Dan had $3 left after buying candy. He had $4 at the start. How much did the candy cost?"
    line = "word_problem: 4 | -3 ->"  # the numbers in the other order than the query's
    assert constraint_for(query, mode="generic").allows(line)
    assert not constraint_for(query, mode="full").allows(line)
    generic = constraint_for(query, mode="generic")
    assert not generic.allows("word_problem: 5 | -3 ->")  # 5 is no number of the query
    assert not generic.allows("word_problem: 4 | -3 -3 ->")  # 3 is written once
    assert not generic.allows("word_problem: 4 | %3")  # not the grammar
    assert generic.allows("word_problem: 4 | -(3 ")


def test_generic_mode_keeps_every_duration_of_a_schedule_in_the_query_order():
    # The router left the last task of a long list out of plans of the generated calib split.
    query = "Slot in Uma (1.25 h), Walter (0.75 h), gardening (0.25 h) and Stefan (1.25 h) - with no overlap"
    generic = constraint_for(query, mode="generic")
    assert not generic.allows("schedule: Uma:1.25hr,Walter:0.75hr,Stefan:1.25hr | no_overlap ->")
    assert not generic.allows("schedule: Uma:1.25hr,Walter:0.75hr,Stefan:1.25hr |")  # the mark comes after all
    assert generic.allows("schedule: Uma:1.25hr,Walter:0.75hr,gardening:0.25hr,Stefan:1.25hr | no_overlap ->")
    # A plan lists its tasks as the request asks for them: a schedule's ordering rules are what
    # its spec means, so the generic mode keeps them (a word problem's are the full mode's only).
    reordered = "schedule: Walter:0.75hr,Uma:1.25hr,gardening:0.25hr,Stefan:1.25hr | no_overlap ->"
    assert not generic.allows(reordered)
    assert not constraint_for(query, mode="full").allows(reordered)
    assert generic.can_relax
    assert generic.relaxed().allows("schedule: Uma:1.25hr,Walter:0.75hr,Stefan:1.25hr | no_overlap ->")


def test_a_schedule_begins_no_task_once_every_duration_has_one():
    # After its last task a router wrote a comma on the calib split, then query words as the name
    # of a task no duration was left for, until cut off.
    query = "plan my day: stretching, 1.75 hours, Laura, 1 hour and shower, 1 hour, start at 11."
    generic = constraint_for(query, mode="generic")
    assert generic.allows("schedule: stretching:1.75hr,Laura:1hr,shower:1hr")
    assert not generic.allows("schedule: stretching:1.75hr,Laura:1hr,shower:1hr,")
    assert not generic.allows("schedule: stretching:1.75hr,Laura:1hr,shower:1hr,at the")
    assert generic.allows("schedule: stretching:1.75hr,Laura:1hr,shower:1hr | start:11 ->")
    assert generic.allows("schedule: stretching:1.75hr,Laura:1hr,")  # a duration is left for this one
    # A duration the query states twice is two tasks'.
    twice = constraint_for("Schedule Wendy (0.5hr) and Gavin (0.5hr), no overlap", mode="generic")
    assert twice.allows("schedule: Wendy:0.5hr,Gavin:0.5hr | no_overlap ->")
    assert not twice.allows("schedule: Wendy:0.5hr,Gavin:0.5hr,")
    assert twice.relaxed().allows("schedule: Wendy:0.5hr,Gavin:0.5hr,")


def test_generic_mode_keeps_the_start_a_schedule_request_gives():
    # The router ended plans after `sequential` with the request's start left out (calib split).
    generic = constraint_for("Book gym (2hr) and yoga (1hr) from 9", mode="generic")
    assert not generic.allows("schedule: gym:2hr,yoga:1hr | sequential ->")
    assert generic.allows("schedule: gym:2hr,yoga:1hr | sequential,start:9 ->")
    assert generic.allows("schedule: gym:2hr,yoga:1hr | start:9 ->")
    assert "," in generic.continuations("schedule: gym:2hr,yoga:1hr | sequential")
    # A request without a start hour ends where it likes.
    assert constraint_for("Book gym (2hr) and yoga (1hr), no overlap", mode="generic").allows(
        "schedule: gym:2hr,yoga:1hr | no_overlap ->")
    # A number the clause goes on from counts something else: no start is required for it.
    query = "Create a plan for Derek (60 min) and tutoring (50 min), so nothing overlaps - in under 20 words"
    generic = constraint_for(query, mode="generic")
    assert generic.allows("schedule: Derek:60min,tutoring:50min | no_overlap ->")
    assert generic.allows("schedule: Derek:60min,tutoring:50min | no_overlap,start:20 ->")  # allowed, not forced
    assert constraint_for("Book gym (2hr) and yoga (1hr) from 9 on", mode="generic").allows(
        "schedule: gym:2hr,yoga:1hr | sequential ->")
    assert not constraint_for("Book gym (2hr) and yoga (1hr), start at 11:30.", mode="generic").allows(
        "schedule: gym:2hr,yoga:1hr | sequential ->")
    # ... also where it sits in a sentence with no duration (the router left it out on the calib split).
    generic = constraint_for("Today I have chess for 45 minutes and lunch for 1 hour. Plan them, kicking off at 13.",
                             mode="generic")
    assert not generic.allows("schedule: chess:45min,lunch:1hr | sequential ->")
    assert generic.allows("schedule: chess:45min,lunch:1hr | sequential,start:13 ->")


def test_a_number_ends_its_clause_where_no_word_follows_it():
    def clause_final_numbers(query):
        return {min(n.spellings) for n in query_numbers(query) if n.required and n.ends_clause}

    assert clause_final_numbers("Book gym (2hr) from 9, no overlap") == {"9"}
    assert clause_final_numbers("start at 11:30.\nthanks") == {"11", "30"}
    assert clause_final_numbers("from 17") == {"17"}
    assert clause_final_numbers("from 9 on - in under 20 words") == set()


def test_a_number_is_negative_only_where_the_query_writes_it_so():
    generic = constraint_for("Divide -36 by 301", mode="generic")
    assert generic.allows("divide: -36 / 301 ->")
    assert not generic.allows("divide: 36 / -301 ->")
    assert not generic.allows("divide: 36 / 301 ->")  # -36 is copied with its minus
    assert not constraint_for("Can you work out -346.67 + 943.27?", mode="generic").allows("add: 346.67 + 943.27 ->")
    assert constraint_for("what is negative 5 times 4", mode="generic").allows("multiply: -5 * 4 ->")
    wp = constraint_for("Tom has 20 apples and gives away 5.", mode="generic")
    assert wp.allows("word_problem: apples:20 | -5 ->")
    assert not wp.allows("word_problem: apples:20 | --5 ->")


def test_a_negative_number_cannot_be_begun_without_its_minus():
    # The grammar's unsigned number and the copy rule each take "425" (as the start of "4255",
    # as a word of the query); only together do they rule it out.
    generic = constraint_for("WHAT IS 675 TIMES -425?", mode="generic")
    assert not generic.leads_somewhere("multiply: 675 * 4")
    assert generic.leads_somewhere("multiply: 675 * -4")
    assert generic.allows("multiply: 675 * -425 ->")
    decimals = constraint_for("what is 7 times 7.5", mode="generic")
    assert decimals.leads_somewhere("multiply: 7") and decimals.leads_somewhere("multiply: 7 * 7.")
    # A number a unit follows without a space ends there too ("2hr" is the words "2" and "hr").
    glued = LineConstraint({"nap": SpecVocabulary("copy", frozenset({"hr"}), pattern=r"[0-9]+hr")}, "nap 2 hours")
    assert glued.leads_somewhere("nap: 2") and glued.allows("nap: 2hr ->")


def test_a_percentage_is_copied_with_its_percent_sign_and_only_it():
    experts = get_experts()
    marked = LineConstraint.for_experts(experts, "Calculate 76.7% of -81.6", mode="generic")
    assert marked.allows("multiply: 76.7% * -81.6 ->") and marked.allows("multiply: -81.6 * 76.7% ->")
    assert not marked.allows("multiply: -81.6 * 76.7 ->")  # a hundred times the answer
    assert not marked.allows("multiply: 76.7% * -81.6% ->")
    assert marked.leads_somewhere("multiply: -81.6 * 76.7")  # the sign is still to come
    # A minus no number left to copy can follow: the line would end in a dead end, not a spec.
    assert not marked.leads_somewhere("multiply: -81.6 * -")
    assert marked.leads_somewhere("multiply: 76.7% * -")
    misspelled = LineConstraint.for_experts(experts, "Find 45 pecent of 6605.41", mode="generic")
    assert misspelled.allows("multiply: 45% * 6605.41 ->") and not misspelled.allows("multiply: 45 * 6605.41 ->")
    both = LineConstraint.for_experts(experts, "what is 20% of 20", mode="generic")
    assert both.allows("multiply: 20% * 20 ->") and both.allows("multiply: 20 * 20% ->")
    unmarked = LineConstraint.for_experts(experts, "what percent of 80 is 20", mode="generic")
    assert unmarked.allows("divide: 20 / 80 ->")


def test_numbers_are_copied_without_their_thousands_separators():
    experts = get_experts()
    query = "what is 1,234 plus 54,788"
    constraint = LineConstraint.for_experts(experts, query, mode="generic")
    assert constraint.allows("add: 1234 + 54788 ->")
    assert not constraint.allows("add: 1 + 234 ->")


@pytest.mark.parametrize("query", ["What is 2**10?", "3^4", "7 mod 3", "1e3*2", "what is the square root of 80",
                                   "what is 8 factorial", "log of 100", "Solve 3*x + 2 = 11 for x.",
                                   "Let f(x) = 2x + 1. What is f(3)?", "Let a = -8 - -3.", "Is 91 prime?",
                                   "List the prime factors of 84", "is 126 divisible by 8",
                                   "Sort 5, -2, 9 in descending order.", "the derivative of 5 t at 2",
                                   "3 + 4 + 5", "what is 250 times 118 times 9", "(453 - 3.2) - 388",
                                   "What's 83.3 minus 95.5 minus 620?", "1/2 times 5/8",
                                   "Evaluate 12! x 62", "10! divided by 85.7",
                                   "What is the next term in 841483, 840895, 840307?", "What is the k'th term of 5, 9, 13?",
                                   "Is 84 a factor of 139990788?", "Does 2 divide 11891?", "Is 269513 composite?",
                                   "What is the millions digit of 1787074010?", "What is the closest to 5.4 in -4, 46, 0.3?",
                                   "What is the third biggest value in 0.4, 0, 1/24?", "Put -2, -1520, -1, 1 in decreasing order.",
                                   "What comes next: 754, 1506, 2258, 3010?",
                                   "Calculate prob of sequence rw when two letters picked without replacement from plrwplv.",
                                   "Which novel features the slogan 2 + 2 = 5?", "Why does (0.1+0.2) = 0.30000000000000004?"])
def test_no_expert_that_computes_takes_an_operation_none_supports(query):
    constraint = LineConstraint.for_experts(get_experts(), query, mode="generic")
    for name in ("multiply", "add", "subtract", "divide", "word_problem"):
        assert f"{name}:" not in constraint.heads, (query, name)
    assert "chat:" in constraint.heads


@pytest.mark.parametrize("query", ["What is 2 * 10?", "A lumberjack chops 5 logs and 3 more. How many logs?",
                                   "15% of 80", "5 eggs and 3 more eggs", "582 x -91.2",
                                   "The tree grew by a factor of 3 from 20 feet. How tall is it?",
                                   "It was a -5 degree low at dawn and rose 8. What is it now?",
                                   "What is 1,234 x -5?", "696 * -38.2", "the product of 1,250 and 3",
                                   "Ann reads 12 books each month and 30 more next term in school. How many books?",
                                   "2 * 3 = ?", "what is 12*3="])
def test_supported_operations_keep_their_experts(query):
    constraint = LineConstraint.for_experts(get_experts(), query, mode="generic")
    assert "multiply:" in constraint.heads and "word_problem:" in constraint.heads


def test_no_training_or_dev_query_for_an_expert_asks_an_unsupported_operation():
    import corpora.clinc150
    import corpora.mawps
    from lazarus_cot_router.experts.vocabulary import unsupported_operation

    examples = generate_split("train", 2000, seed=7) + generate_split("calib", 200, seed=0)
    examples += corpora.mawps.examples("train") + corpora.mawps.examples("dev")
    examples += corpora.clinc150.examples("train") + corpora.clinc150.examples("val")
    asked = [(e.query, found) for e in examples if e.expert != "chat" and (found := unsupported_operation(e.query))]
    assert not asked


def test_every_mathematics_train_and_dev_question_no_expert_answers_names_an_unsupported_operation():
    import corpora.mathematics
    from lazarus_cot_router.experts.vocabulary import unsupported_operation

    chat = [e for split in ("train", "dev") for e in corpora.mathematics.examples(split) if e.expert == "chat"]
    assert len(chat) == 480
    assert [e.query for e in chat if not unsupported_operation(e.query)] == []


def test_a_contraction_before_a_negative_number_is_no_unknown():
    constraint = LineConstraint.for_experts(get_experts(), "What's -12.5 - 362?", mode="generic")
    assert "subtract:" in constraint.heads


@pytest.mark.parametrize("query, only", [
    ("In under 20 words. 4.7+712", "add"), ("What is -3*-542?", "multiply"), ("9798.54 - 4785.61?", "subtract"),
    ("696 - -38.2", "subtract"), ("5+-3", "add"), ("614--61.9", "subtract"), ("1,234 / 2", "divide"),
    ("What is 3 + 4 * 2?", None),
])
def test_an_operator_the_query_writes_names_the_arithmetic_expert(query, only):
    heads = LineConstraint.for_experts(get_experts(), query, mode="generic").heads
    arithmetic = {name for name in ("multiply", "add", "subtract", "divide") if f"{name}:" in heads}
    assert arithmetic == ({only} if only else set())
    assert "chat:" in heads


def test_a_line_with_no_valid_way_on_becomes_a_passthrough(tiny_model_dir):
    from lazarus_cot_router.decoding import Decoded
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    router = TrainedCoTRewriter(model=str(tiny_model_dir))
    result = router.route_batch(["x"])[0]
    router._execute(result, Decoded(tokens=[1], text="add: 2 +", finish="dead_end"))
    assert result.error and "no valid routing line" in result.error
    action = router.to_action(result)
    assert (action.expert, action.operation) == ("none", "passthrough")


def test_a_line_the_constraint_overrode_passes_through(tiny_model_dir):
    from lazarus_cot_router.models import load
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    loaded = load(str(tiny_model_dir))
    query = "In base 16, what is -731 - -1c65?"
    router = TrainedCoTRewriter(model=str(tiny_model_dir), loaded=loaded, max_masked=1.0, resample=0)
    [free] = router.route_batch([query])
    assert free.masked > 0.0 and "masked" not in (free.error or "")  # the random model's line left the grammar
    router.max_masked = free.masked / 2
    [gated] = router.route_batch([query])
    assert gated.masked == pytest.approx(free.masked)
    assert "the constraint masked" in gated.error and gated.expert is None
    assert gated.overridden and not free.overridden
    assert router.to_action(gated).operation == "passthrough"
    # Judged again on its canonical tokens: both shares were above the limit.
    canonical = gated.masked_canonical
    assert canonical is not None and f"{canonical:.1%} on the line's own tokens" in gated.error
    assert free.masked_canonical is None  # nothing to judge with the check off
    assert canonical < gated.masked  # the random model prefers no split of a word in particular
    router.max_masked = (canonical + gated.masked) / 2
    [judged] = router.route_batch([query])
    assert not judged.overridden and judged.error is None and judged.masked_canonical == pytest.approx(canonical)
    with pytest.raises(ValueError, match="max_masked"):
        TrainedCoTRewriter(model=str(tiny_model_dir), loaded=loaded, max_masked=1.5)


def test_the_config_default_is_the_rewriters():
    from lazarus_cot_router.options import TrainedCoTOptions
    from lazarus_cot_router.rewriter import DEFAULT_MAX_MASKED, DEFAULT_RESAMPLE

    assert (TrainedCoTOptions().resample, TrainedCoTOptions().max_masked) == (DEFAULT_RESAMPLE, DEFAULT_MAX_MASKED)
