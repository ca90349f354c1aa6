"""Distractors for the public word problems (training/distractors.py)."""

import random

import pytest

from corpora import mawps
from corpora.text import written_numbers
from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.word_problem import WordProblemExpert
from lazarus_cot_router.plugins import get_experts
from training.data import corpus_examples, training_examples
from training.evaluate import same_answer
from training.distractors import (DISTRACTOR_TAG, add_distractors, fits, insert_distractor, opening_statement,
                                  split_sentences, unused_numbers)

EXPERT = WordProblemExpert()


def problem(query, spec="1 | +2", answer="3"):
    return Example(query, "word_problem", spec, answer, ("source:mawps",))


def test_sentences_split_where_a_capitalized_word_follows():
    assert split_sentences("Tom has 3.5 kg. He buys 2 more! How many? ") == ["Tom has 3.5 kg.", "He buys 2 more!", "How many?"]
    assert split_sentences("It costs $1.50 each. how many?") == ["It costs $1.50 each. how many?"]


def test_only_an_opening_statement_with_a_number_is_a_donor():
    assert opening_statement(problem("There are 41 oak trees. How many are there?")) == "There are 41 oak trees."
    assert opening_statement(problem("There are some oak trees. Ann cut 4. How many are left?")) is None
    assert opening_statement(problem("How many is 41 and 2?")) is None
    assert opening_statement(problem("Is 41 more than 2? Tell me.")) is None


def test_the_distractor_goes_right_before_the_question():
    assert insert_distractor("Sam has 4 pens. He buys 2. How many pens?", "Ann ran 9 miles.") == \
        "Sam has 4 pens. He buys 2. Ann ran 9 miles. How many pens?"
    assert insert_distractor("If Sam has 4 pens and buys 2, how many pens?", "Ann ran 9 miles.") == \
        "Ann ran 9 miles. If Sam has 4 pens and buys 2, how many pens?"


def test_a_donor_that_shares_a_number_or_a_word_of_the_question_does_not_fit():
    query = "Sam has 4 pens. He buys 2. How many pens does Sam have?"
    assert fits(query, "Ann ran 9 miles.")
    assert not fits(query, "Ann ran 4 miles.")
    assert not fits(query, "Ann has 9 pens.")
    assert not fits(query, "Ann has 9 PENS.")


def test_distractors_keep_spec_and_answer_and_add_one_unused_number():
    pool = mawps.examples("train")
    out = add_distractors(pool[:300], 0.5, pool, random.Random(0))
    changed = [(old, new) for old, new in zip(pool, out) if new != old]
    assert 100 < len(changed) < 200
    for old, new in changed:
        assert (new.expert, new.spec, new.answer) == (old.expert, old.spec, old.answer)
        assert new.tags == (*old.tags, DISTRACTOR_TAG)
        assert len(new.query) > len(old.query)
        extra = set(written_numbers(new.query)) - set(written_numbers(old.query))
        assert extra and not extra & set(written_numbers(new.spec))
        assert unused_numbers(new) - unused_numbers(old)
        assert same_answer(EXPERT.answer(new.spec), new.answer)
        assert split_sentences(new.query)[-1] == split_sentences(old.query)[-1]


def test_share_zero_changes_nothing_and_share_out_of_range_fails():
    pool = mawps.examples("train")[:50]
    assert add_distractors(pool, 0.0, pool, random.Random(0)) == pool
    assert add_distractors(pool, 1.0, [], random.Random(0)) == pool
    with pytest.raises(ValueError, match="share"):
        add_distractors(pool, 1.5, pool, random.Random(0))


def test_the_training_set_gets_distractors_in_its_word_problems_only():
    plain = corpus_examples(mawps=400, clinc=100, seed=3)
    augmented = corpus_examples(mawps=400, clinc=100, seed=3, distractor_share=0.5)
    assert [e.spec for e in plain] == [e.spec for e in augmented]
    assert plain[400:] == augmented[400:]
    tagged = [e for e in augmented if DISTRACTOR_TAG in e.tags]
    assert 120 < len(tagged) < 280 and all(e.expert == "word_problem" for e in tagged)
    experts = list(get_experts().values())
    assert sum(DISTRACTOR_TAG in e.tags for e in training_examples(10, 3, experts, mawps=400, distractor_share=0.5)) == len(tagged)
