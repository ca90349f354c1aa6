"""GSM8K's train split as word_problem training examples (corpora.gsm8k)."""

import pytest

from corpora import gsm8k
from lazarus_cot_router.constrain import LineConstraint
from lazarus_cot_router.experts.word_problem import WordProblemExpert, parse_spec, write_spec
from lazarus_cot_router.plugins import get_experts
from lazarus_cot_router.prompts import target_text
from training.evaluate import same_answer

EXPERT = WordProblemExpert()

def test_annotations_chain_into_one_expression():
    solution = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72")
    expression, answer = gsm8k.chained_expression(solution)
    assert answer == "72"
    assert gsm8k.operations(expression) == 2
    assert write_spec(expression) == "48 | +(48 /2)"


@pytest.mark.parametrize("solution, reason", [
    ("She pays 5% of 80: <<5%*80=4>>4.\n#### 4", gsm8k.NOT_ARITHMETIC),
    ("No calculator here.\n#### 4", gsm8k.NOT_ARITHMETIC),
    ("<<2*3=6>>6 apples, and <<10-4=6>>6 pears.\n#### 6", gsm8k.UNCHAINED),  # the first feeds nothing
    ("<<2*3=6>>6, then <<6+1=7>>7.\n#### 8", gsm8k.UNCHAINED),  # the last is not the answer
])
def test_solutions_that_do_not_chain_are_dropped_with_their_reason(solution, reason):
    with pytest.raises(gsm8k.DroppedProblem) as caught:
        gsm8k.chained_expression(solution)
    assert caught.value.reason == reason


def test_every_kept_problem_executes_to_its_answer_within_the_copy_constraint():
    experts = get_experts()
    kept = gsm8k.examples("train")
    assert kept
    for example in kept:
        assert example.expert == "word_problem" and example.tags[0] == gsm8k.SOURCE_TAG
        assert same_answer(EXPERT.answer(example.spec), example.answer), example
        assert gsm8k.operations(parse_spec(example.spec).expression) <= gsm8k.MAX_OPERATIONS, example
        line = target_text("word_problem", example.spec)
        assert LineConstraint.for_experts(experts, example.query, mode="generic").allows(line), example


def test_gsm8k_counts_are_what_the_converter_reports():
    counts = gsm8k.conversion().counts()
    assert counts == {
        "rows": 7473, "train": 1477,
        f"dropped: {gsm8k.NOT_ARITHMETIC}": 409, f"dropped: {gsm8k.UNCHAINED}": 774,
        f"dropped: {gsm8k.TOO_LONG}": 3103, f"dropped: {gsm8k.NOT_COPYABLE}": 1710,
        f"dropped: {gsm8k.DUPLICATE}": 0,
    }
    assert counts["rows"] == sum(v for k, v in counts.items() if k != "rows")
    with pytest.raises(ValueError, match="unknown GSM8K split"):
        gsm8k.examples("test")


def test_training_draws_gsm8k_problems_only_when_asked():
    from training.data import training_examples

    experts = list(get_experts().values())
    mixed = training_examples(0, 0, experts, gsm8k=40)
    assert len(mixed) == 40 and all(gsm8k.SOURCE_TAG in e.tags for e in mixed)
    assert {e.query for e in mixed} <= {e.query for e in gsm8k.examples("train")}
    assert not any(gsm8k.SOURCE_TAG in e.tags for e in training_examples(0, 0, experts, mawps=40))
