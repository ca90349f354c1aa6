"""A line whose result its expert does not usually give (a negative or fractional
count in a word problem) gets a second opinion from sampled lines; a negative one
with no better sample passes through, a fractional one stands."""

from __future__ import annotations

import re

import pytest

from lazarus_cot_router import rewriter as rewriter_module
from lazarus_cot_router.decoding import Decoded
from lazarus_cot_router.experts.arithmetic import ArithmeticExpert
from lazarus_cot_router.models import load
from lazarus_cot_router.plugins import get_experts
from lazarus_cot_router.rewriter import TrainedCoTRewriter

QUERY = "Tom had 3 apples. He has 5 apples now. How many did he buy?"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def line(tokenizer, text: str) -> Decoded:
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return Decoded(tokens=tokens, text=text, logprobs=[-0.01] * len(tokens), finish="arrow")


@pytest.fixture
def router(tiny, tiny_model_dir, monkeypatch):
    """The rewriter with its greedy line scripted: ``router.greedy`` is what it writes."""
    rewriter = TrainedCoTRewriter(model=str(tiny_model_dir), loaded=tiny, max_tokens=12)
    rewriter.greedy = "word_problem: 3 | -5 ->"
    monkeypatch.setattr(rewriter_module, "decode_batch",
                        lambda model, tokenizer, prompts, **kw: [line(tokenizer, rewriter.greedy) for _ in prompts])
    return rewriter


def script_samples(monkeypatch, texts: list[str], calls: list | None = None):
    def sample(model, tokenizer, prefix, suffixes, num_generations, **kw):
        if calls is not None:
            calls.append(num_generations)
        return [[line(tokenizer, t) for t in texts[:num_generations]] for _ in suffixes]

    monkeypatch.setattr(rewriter_module, "sample_completions", sample)


def test_word_problem_results_below_zero_are_out_of_range():
    experts = get_experts()
    assert not experts["word_problem"].gives_result("-2")
    assert experts["word_problem"].gives_result("0") and experts["word_problem"].gives_result("2.5")
    assert ArithmeticExpert.least_result is None and experts["subtract"].gives_result("-2")


def test_word_problem_results_are_usually_whole():
    experts = get_experts()
    assert experts["word_problem"].usual_result("4") and experts["word_problem"].usual_result("0")
    assert not experts["word_problem"].usual_result("2.5")
    assert not experts["word_problem"].usual_result("-2")
    assert experts["divide"].usual_result("2.5") and experts["subtract"].usual_result("-2")


def test_a_fractional_result_gives_way_to_the_whole_one_most_samples_agree_on(router, monkeypatch):
    router.greedy = "word_problem: 3 | /5 ->"
    samples = ["word_problem: 3 | /5 ->", "word_problem: 3 | /5 ->", "word_problem: 3 | /5 ->",
               "word_problem: 3 | +5 ->", "word_problem: 3 | *5 ->", "word_problem: 3 | +5 ->",
               "word_problem: 3 | -5 ->", "chat: ->"]
    script_samples(monkeypatch, samples)
    [result] = router.route_batch([QUERY])
    assert (result.spec, result.result, result.confidence) == ("3 | +5", "8", 2 / 8)
    assert "2 of 8 sampled lines agree (the first line's result was unusual)" in result.note


def test_a_fractional_result_stands_when_no_sample_is_whole(router, monkeypatch):
    router.greedy = "word_problem: 3 | /5 ->"
    script_samples(monkeypatch, ["word_problem: 3 | /5 ->"] * 4 + ["word_problem: 3 | -5 ->"] * 4)
    [result] = router.route_batch([QUERY])
    assert result.error is None and (result.spec, result.result) == ("3 | /5", "0.6")
    assert "none of 8 sampled lines gave a usual result" in result.note


def test_out_of_range_prefers_whole_samples_then_any_in_range(router, monkeypatch):
    script_samples(monkeypatch, ["word_problem: 3 | /5 ->"] * 5 + ["word_problem: 5 | -3 ->"] * 2 + ["chat: ->"])
    [result] = router.route_batch([QUERY])
    assert (result.result, result.confidence) == ("2", 2 / 8)
    script_samples(monkeypatch, ["word_problem: 3 | /5 ->"] * 5 + ["word_problem: 3 | -5 ->"] * 3)
    [result] = router.route_batch([QUERY])
    assert (result.result, result.confidence) == ("0.6", 5 / 8)
    assert "(the first line's result was out of range)" in result.note


def test_the_result_most_in_range_samples_agree_on_wins(router, monkeypatch):
    samples = ["word_problem: 5 | -3 ->", "word_problem: 3 | -5 ->", "word_problem: 3 | +5 ->",
               "word_problem: 5 | -3 ->", "word_problem: 5 | -3 ->", "word_problem: 3 | +5 ->",
               "chat: ->", "word_problem: 3 | *5 ->"]
    script_samples(monkeypatch, samples)
    [result] = router.route_batch([QUERY])
    assert result.error is None
    assert (result.expert, result.spec, result.result) == ("word_problem", "5 | -3", "2")
    assert result.confidence == pytest.approx(3 / 8)
    assert "3 of 8 sampled lines agree" in result.note


def test_no_sample_in_range_passes_through(router, monkeypatch):
    script_samples(monkeypatch, ["word_problem: 3 | -5 ->"] * 8)
    action = router.rewrite(QUERY)
    assert action.operation == "passthrough"
    assert "gives a result word_problem does not give" in action.reasoning


def test_resample_zero_passes_through_without_sampling(router, monkeypatch):
    calls: list = []
    script_samples(monkeypatch, ["word_problem: 5 | -3 ->"] * 8, calls)
    router.resample = 0
    assert router.rewrite(QUERY).operation == "passthrough"
    assert calls == []


def test_a_line_in_range_is_not_resampled(router, monkeypatch):
    calls: list = []
    script_samples(monkeypatch, [], calls)
    router.greedy = "word_problem: 5 | -3 ->"
    [result] = router.route_batch([QUERY])
    assert result.result == "2" and calls == []


def test_real_samples_give_a_line_the_constraint_allows_or_a_passthrough(router):
    """The tiny random model samples under the copy constraint: whatever it
    writes, the outcome is an in-range result built from the query's numbers,
    or a passthrough."""
    [result] = router.route_batch([QUERY])
    if result.error is None:
        assert router.experts[result.expert].gives_result(result.result)
        assert set(re.findall(r"\d+", result.spec or "")) <= {"3", "5"}
    else:
        assert "does not give" in result.error


def test_negative_resample_is_refused(tiny, tiny_model_dir):
    with pytest.raises(ValueError, match="resample"):
        TrainedCoTRewriter(model=str(tiny_model_dir), loaded=tiny, resample=-1)


def test_under_hidden_routing_only_samples_of_the_chosen_expert_count(router, monkeypatch):
    from lazarus_cot_router.rewriter import RouteResult, execute_route

    script_samples(monkeypatch, ["add: 3 + 5 ->"] * 5 + ["word_problem: 5 | -3 ->"] * 3)
    first = RouteResult(query=QUERY, raw="word_problem: 3 | -5 ->", expert="word_problem", spec="3 | -5")
    execute_route(first, router.experts)
    router.routing = "hidden"
    router._prefix = None
    router._second_opinions([first], [[1, 2, 3]], [QUERY])
    assert (first.expert, first.result, first.confidence) == ("word_problem", "2", 3 / 8)
