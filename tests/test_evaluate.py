"""Scoring of routing lines against labelled queries."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.plugins import get_experts
from training.evaluate import format_report, same_answer, score_one, summarize


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
