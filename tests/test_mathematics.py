"""DeepMind's mathematics_dataset questions as an evaluation suite (corpora/mathematics.py)."""

from collections import Counter
from fractions import Fraction

import pytest

from corpora import builtin_experts, mathematics
from training.evaluate import same_answer
from training.suites import kind_of, load_suite

EXPERTS = builtin_experts()


def test_every_question_converts_and_each_spec_executes_to_the_files_answer():
    rows = {row["question"]: row for row in mathematics.rows()}
    examples = mathematics.evaluation()
    assert len(rows) == 900 and len(examples) == 898
    assert mathematics.dropped() == ("What is -18101456574 take away 0?", "What is -24.4041388168 - 0?")
    kinds = Counter((kind_of(e.tags), e.expert) for e in examples)
    assert kinds == {("add_or_sub", "add"): 94, ("add_or_sub", "subtract"): 104, ("mul", "multiply"): 200,
                     ("div", "divide"): 200, ("other", "chat"): 300}
    for example in examples:
        assert mathematics.SOURCE_TAG in example.tags
        if example.expert != "chat":
            assert same_answer(EXPERTS[example.expert].answer(example.spec), example.answer)
            assert example.answer == EXPERTS[example.expert].answer(example.spec)
            got, want = float(example.answer), float(Fraction(rows[example.query]["answer"]))  # "-3/2204309"
            assert abs(got - want) <= 1e-6 * max(1.0, abs(want))


@pytest.mark.parametrize("question, answer, family, expected", [
    ("What is 5 less than -2?", "-7", ("add", "subtract"), ("subtract", "-2 - 5")),
    ("Subtract -700986587 from 0.182.", "700986587.182", ("add", "subtract"), ("subtract", "0.182 - -700986587")),
    ("What is the distance between -0.052 and -747.313233?", "747.261233", ("add", "subtract"),
     ("subtract", "-0.052 - -747.313233")),
    ("Total of -0.3 and 12.", "11.7", ("add", "subtract"), ("add", "-0.3 + 12")),
    ("-3*-542", "1626", ("multiply",), ("multiply", "-3 * -542")),
    ("Divide -36 by 301.", "-36/301", ("divide",), ("divide", "-36 / 301")),
])
def test_the_spec_is_the_operation_and_order_that_give_the_answer(question, answer, family, expected):
    assert mathematics.one_operation_spec(question, answer, family) == expected


def test_questions_no_reading_or_two_readings_fit_are_refused():
    with pytest.raises(mathematics.ConversionError, match="two operations"):
        mathematics.one_operation_spec("What is 7 take away 0?", "7", ("add", "subtract"))
    with pytest.raises(mathematics.ConversionError, match="no operation"):
        mathematics.one_operation_spec("Total of 2 and 3.", "7", ("add", "subtract"))
    with pytest.raises(mathematics.ConversionError, match="two numbers"):
        mathematics.one_operation_spec("Evaluate 1 + 2 + 3.", "6", ("add",))


def test_modules_no_expert_answers_stay_chat_and_count_as_false_positives():
    other = [e for e in mathematics.evaluation() if kind_of(e.tags) == "other"]
    modules = Counter(next(t for t in e.tags if t.startswith("module:")) for e in other)
    assert len(modules) == 12 and set(modules.values()) == {25}
    assert {e.expert for e in other} == {"chat"} and all(e.answer is None for e in other)
    assert load_suite("mathematics") == mathematics.evaluation()


def test_the_train_file_converts_and_asks_none_of_the_test_files_questions_or_chat_kinds():
    rows = mathematics.rows(mathematics.TRAIN_PATH)
    train, dev = mathematics.examples("train"), mathematics.examples("dev")
    assert len(rows) == 1380 and len(train) + len(dev) == 1379  # one question two operations answer
    assert 0.07 < len(dev) / (len(train) + len(dev)) < 0.13
    assert not {e.query for e in train} & {e.query for e in dev}
    assert not {row["question"] for row in rows} & {row["question"] for row in mathematics.rows()}
    # the test file's kinds that must stay chat are never trained on, in their own or their composed form
    test_other = {row["module"] for row in mathematics.rows() if row["module"] not in mathematics.ONE_OPERATION}
    train_other = {row["module"].removesuffix("_composed") for row in rows if row["module"] not in mathematics.ONE_OPERATION}
    assert len(train_other) > 20 and not test_other & train_other
    for example in train + dev:
        if example.expert != "chat":
            assert example.answer == EXPERTS[example.expert].answer(example.spec)
    assert Counter(e.expert for e in train) == {"chat": 430, "divide": 280, "multiply": 260, "add": 133, "subtract": 127}
    with pytest.raises(ValueError, match="split must be one of"):
        mathematics.examples("test")


def test_training_draws_only_the_train_part_of_the_train_file():
    from lazarus_cot_router.plugins import get_experts
    from training.data import training_examples

    mixed = training_examples(0, 0, list(get_experts().values()), mathematics=300)
    drawn = {e.query for e in mixed if mathematics.SOURCE_TAG in e.tags}
    assert len(drawn) == len(mixed) == 300
    assert drawn <= {e.query for e in mathematics.examples("train")}
    assert load_suite("mathematics-dev") == mathematics.examples("dev")


def test_only_the_suites_read_the_test_file_and_the_dev_part():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    reads = re.compile(r"mathematics\.(evaluation|rows|_conversion)\(|mathematics\.examples\(\"dev\"\)")
    readers = [p.relative_to(root).as_posix() for p in [*root.glob("training/**/*.py"), *root.glob("calibration/*.py")]
               if reads.search(p.read_text(encoding="utf-8"))]
    assert readers == ["training/suites.py"]
