"""Scoring of routing lines against labelled queries."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.plugins import get_experts
from training.evaluate import format_report, numbers_written, same_answer, score_one, summarize


@pytest.fixture(scope="module")
def experts():
    return get_experts(clock=lambda: datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc))


def test_same_answer():
    assert same_answer("1024", 1024) and same_answer("5.75", "5.75") and same_answer(8, "8.0")
    assert same_answer(None, None) and same_answer("anything", None)
    assert not same_answer("1023", 1024) and not same_answer(None, "Asia/Tokyo")


def test_score_levels(experts):
    ex = Example("What is 256 * 4?", "multiply", "256 * 4", "1024")
    right = score_one(ex, "multiply", "256 * 4", experts)
    assert all(right[k] for k in ("format", "expert", "spec", "execution"))
    wrong_spec = score_one(ex, "multiply", "256 * 5", experts)
    assert (wrong_spec["expert"], wrong_spec["spec"], wrong_spec["execution"]) == (True, False, False)
    wrong_expert = score_one(ex, "add", "256 + 4", experts)
    assert (wrong_expert["format"], wrong_expert["expert"], wrong_expert["execution"]) == (True, False, False)
    unparsed = score_one(ex, None, None, experts)
    assert not any(unparsed[k] for k in ("format", "expert", "spec", "execution"))


def test_time_compares_resolved_zones(experts):
    ex = Example("Time in London, answer in french", "time", "Europe/London", "Europe/London")
    row = score_one(ex, "time", "London", experts)
    assert row["spec"] and row["execution"]
    assert not score_one(ex, "time", "Paris", experts)["execution"]


def test_spec_that_does_not_execute_is_recorded(experts):
    ex = Example("72 / 9", "divide", "72 / 9", "8")
    row = score_one(ex, "divide", "72 / 0", experts)
    assert row["expert"] and not row["execution"] and "execution_error" in row


def test_summary_counts_and_subsets(experts):
    examples = [
        Example("256 * 4", "multiply", "256 * 4", "1024", ("instruction:brief",)),
        Example("Tell me a joke", "chat", "", None),
        Example("72 / 9", "divide", "72 / 9", "8"),
    ]
    got = [("multiply", "256 * 4"), ("chat", ""), ("multiply", "72 * 9")]
    rows = [score_one(e, n, s, experts) | {"raw": ""} for e, (n, s) in zip(examples, got)]
    report = summarize(rows, [e.tags for e in examples])
    assert report["n"] == 3 and report["expert_accuracy"] == pytest.approx(2 / 3)
    assert report["per_expert"]["divide"]["expert_accuracy"] == 0.0
    assert report["extra_instruction"]["n"] == 1 and report["extra_instruction"]["execution_accuracy"] == 1.0
    assert [f["query"] for f in report["failures"]] == ["72 / 9"]
    assert "overall" in format_report(report)


def test_misses_are_split_by_the_numbers_the_line_wrote(experts):
    examples = [
        Example("Tom had 7 and ate 3. How many are left?", "word_problem", "7 | -3", "4"),
        Example("Ann has 5 bags of 4 and 9 pens. How many apples?", "word_problem", "5 | *4", "20"),
        Example("Ann has 5 bags of 4 and 9 pens. How many things?", "word_problem", "5 | *4 +9", "29"),
        Example("Ann has 5 bags of 4 and 9 pens. How many apples?", "word_problem", "5 | *4", "20"),
        Example("Ann has 5 bags of 4 and 9 pens. How many pens?", "word_problem", "9 | -0", "9"),
        Example("Time in Oslo", "time", "Oslo", "Europe/Oslo"),
        Example("72 / 9", "divide", "72 / 9", "8"),
    ]
    got = [("word_problem", "7 | +3"), ("word_problem", "5 | *4 +9"), ("word_problem", "5 | *4"),
           ("word_problem", "9 | *4"), ("word_problem", "9 | -0"), ("time", "Paris"), ("divide", "72.0 / 9")]
    rows = [score_one(e, n, s, experts) | {"raw": ""} for e, (n, s) in zip(examples, got)]
    assert [r.get("numbers") for r in rows] == ["right", "extra", "fewer", "other", None, None, None]
    report = summarize(rows)
    assert report["misses"] == {"right": 1, "extra": 1, "fewer": 1, "other": 1}
    assert "1 write the gold line's numbers" in format_report(report)
    assert "misses" not in summarize(rows[4:])
    assert numbers_written(Counter([5.0, 4.0]), Counter([5.0, 4.0, 4.0])) == "extra"


def test_a_chat_query_counts_as_routed_right_when_the_host_passes_it_through(experts):
    ex = Example("write code that adds 2 and 4", "chat", "", None, ("kind:other",))
    assert score_one(ex, "chat", "", experts)["expert"]
    taken = score_one(ex, "add", "2 + 4", experts)
    assert not taken["expert"] and taken["taken"]
    failed = score_one(ex, "add", "2 + x", experts, executed=False)  # the rewriter passed it through
    assert failed["expert"] and not failed["taken"]


def test_lines_the_constraint_overrode_are_counted(experts):
    examples = [Example("In base 13, what is 1a0c6 + 49?", "chat", "", None), Example("72 / 9", "divide", "72 / 9", "8")]
    rows = [score_one(examples[0], None, None, experts, executed=False) | {"raw": "add: 13 + 49 ->", "overridden": True},
            score_one(examples[1], "divide", "72 / 9", experts) | {"raw": "divide: 72 / 9 ->", "overridden": False}]
    report = summarize(rows)
    assert report["overridden"] == 1 and report["execution_accuracy"] == 1.0
    assert "passed through 1 queries whose line the constraint overrode" in format_report(report)
    assert summarize(rows[1:])["overridden"] == 0


def test_kinds_and_the_false_positive_rate(experts):
    from training.suites import kind_of

    examples = [Example("q1", "chat", "", None, ("kind:other",)), Example("q2", "chat", "", None, ("kind:oos",)),
                Example("q3", "chat", "", None, ("kind:other",)), Example("q4", "time", "Oslo", "Europe/Oslo", ("kind:time",))]
    got = [("chat", ""), ("time", "Oslo"), ("chat", ""), ("time", "Oslo")]
    rows = [score_one(e, n, s, experts) | {"raw": ""} for e, (n, s) in zip(examples, got)]
    report = summarize(rows, [e.tags for e in examples])
    assert report["false_positive_rate"] == pytest.approx(1 / 3)
    assert report["kinds"]["time"]["execution_accuracy"] == 1.0 and report["kinds"]["oos"]["taken"] == 1.0
    assert kind_of(("source:x", "kind:oos")) == "oos" and kind_of(()) is None
    assert "should stay chat" in format_report(report)


def test_suites_load_their_public_sets_with_stable_samples():
    from training.suites import load_suite, suite_names

    assert suite_names("all") == ["heldout", "robustness", "svamp", "clinc150", "mathematics"]
    assert suite_names("clinc150-val") == ["clinc150-val"]
    with pytest.raises(ValueError, match="unknown suite"):
        suite_names("gsm8k")
    svamp = load_suite("svamp")
    assert len(svamp) == 1000 and {e.expert for e in svamp} == {"word_problem"}
    assert load_suite("svamp", limit=20) == load_suite("svamp", limit=20) != load_suite("svamp", limit=20, seed=1)
    clinc = load_suite("clinc150")
    assert len(clinc) == 5500
    assert len(load_suite("robustness")) == 12 and len(load_suite("heldout", heldout=10)) == 10


def test_the_max_masked_bench_counts_what_a_threshold_costs_and_saves():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "max_masked.py"
    spec = importlib.util.spec_from_file_location("max_masked_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [{"want_expert": "add", "execution": True, "taken": True, "masked": 0.9999},    # right, lost above 0.999
            {"want_expert": "add", "execution": False, "taken": True, "masked": 0.995},    # wrong answer
            {"want_expert": "chat", "execution": False, "taken": True, "masked": 1.0},     # an expert where chat was wanted
            {"want_expert": "chat", "execution": True, "taken": False, "masked": 0.97},    # chat already
            {"want_expert": "divide", "execution": True, "taken": True, "masked": 0.0}]
    assert bench.trade_off(rows, 1.0) == (0, 0)
    assert bench.trade_off(rows, 0.999) == (1, 1)
    assert bench.trade_off(rows, 0.99) == (1, 2)
    assert bench.trade_off(rows, 0.9) == (1, 2)
    # Judged again on its canonical tokens, the right line masks less and is kept down to 0.9.
    rows[0]["masked_canonical"], rows[2]["masked_canonical"] = 0.95, 1.0
    assert bench.trade_off(rows, 0.99) == (0, 2)
    assert bench.trade_off(rows, 0.9) == (1, 2)
    assert bench.trade_off(rows, 0.99, canonical=False) == (1, 2)  # the share as decoded alone
