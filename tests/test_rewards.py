"""Verified rewards: every outcome level, with the registered experts."""

from __future__ import annotations

import pytest

from lazarus_cot_router.experts.base import Expert, SpecSyntaxError
from lazarus_cot_router.plugins import get_experts
from training.config import TrainConfig
from training.rewards import (
    OUTCOMES,
    RewardLevels,
    classify,
    classify_batch,
    make_verified_reward,
    total_rewards,
    verified_reward,
)


@pytest.fixture(scope="module")
def experts():
    return get_experts()


@pytest.mark.parametrize(
    "text, expert, answer, outcome",
    [
        ("multiply: 256 * 4 ->", "multiply", "1024", "correct"),
        (" multiply: 256 * 4 -> 1000", "multiply", "1024", "correct"),
        ("multiply: 256 * 4 ->", "multiply", "1024.0", "correct"),
        ("divide: 72 / 9 ->", "divide", "8", "correct"),
        ("add: 3.5 + 2.25 ->", "add", "5.75", "correct"),
        ("multiply: 256 * 5 ->", "multiply", "1024", "wrong_result"),
        ("divide: 7 / 0 ->", "divide", "0", "spec_fails"),
        ("multiply: 256 + 4 ->", "multiply", "1024", "spec_fails"),
        ("multiply: ->", "multiply", "1024", "spec_fails"),
        ("add: 256 + 4 ->", "multiply", "1024", "wrong_expert"),
        ("chat: ->", "multiply", "1024", "wrong_expert"),
        ("frobnicate: 256 * 4 ->", "multiply", "1024", "unknown_expert"),
        ("The answer is 1024.", "multiply", "1024", "unparseable"),
        ("multiply: 256 * 4", "multiply", "1024", "unparseable"),
        ("", "multiply", "1024", "unparseable"),
        ("word_problem: eggs:16 | -3 -4 *2 ->", "word_problem", "18", "correct"),
        ("word_problem: eggs:16 | -3 -4 *3 ->", "word_problem", "18", "wrong_result"),
        ("time: Asia/Tokyo ->", "time", "Asia/Tokyo", "correct"),
        ("time: Tokyo ->", "time", "Asia/Tokyo", "correct"),
        ("time: Paris ->", "time", "Asia/Tokyo", "wrong_result"),
        ("time: Nowhere/Atlantis ->", "time", "Asia/Tokyo", "spec_fails"),
        ("chat: ->", "chat", None, "correct"),
        ("schedule: gym:1hr,lunch:1.5hr | sequential ->", "schedule", "gym:9-10,lunch:10-11:30", "correct"),
        ("schedule: gym:1hr,lunch:2hr | sequential ->", "schedule", "gym:9-10,lunch:10-11:30", "wrong_result"),
    ],
)
def test_classify_outcomes(experts, text, expert, answer, outcome):
    assert classify(text, expert, answer, experts) == outcome


def test_default_levels_per_outcome(experts):
    lines = ["multiply: 2 * 3 ->", "multiply: 2 * 4 ->", "multiply: 2 / 3 ->", "add: 2 + 3 ->", "nope: 1 ->", "six"]
    n = len(lines)
    scores = verified_reward(["q"] * n, lines, expert=["multiply"] * n, answer=["6"] * n, experts=experts)
    assert scores == [1.0, 0.7, 0.5, 0.3, 0.0, 0.0]


def test_outcomes_cover_levels():
    levels = RewardLevels()
    assert {levels.of(o) for o in OUTCOMES} == {1.0, 0.7, 0.5, 0.3, 0.0}


def test_levels_from_config(experts):
    config = TrainConfig(reward_wrong_expert=0.1, reward_correct=2.0)
    levels = RewardLevels.from_config(config)
    assert levels == RewardLevels(correct=2.0, wrong_expert=0.1)
    reward = make_verified_reward(experts, levels)
    assert reward(["q", "q"], ["add: 1 + 1 ->", "multiply: 1 * 1 ->"], expert=["multiply"] * 2, answer=["1"] * 2) == [0.1, 2.0]


def test_default_experts_come_from_the_registry():
    assert verified_reward(["q"], ["divide: 9 / 3 ->"], expert=["divide"], answer=["3"]) == [1.0]


def test_conversational_completions(experts):
    completion = [{"role": "assistant", "content": "subtract: 50 - 17 ->"}]
    assert classify_batch([completion], experts, expert=["subtract"], answer=["33"]) == ["correct"]


class _Shout(Expert):
    name = "shout"
    description = "upper-cases its spec"

    def execute(self, spec: str) -> str:
        if not spec:
            raise SpecSyntaxError("nothing to shout")
        return spec.upper()


def test_third_party_expert_without_name_lists():
    experts = {"shout": _Shout()}
    assert classify("shout: hi ->", "shout", "HI", experts) == "correct"
    assert classify("shout: ho ->", "shout", "HI", experts) == "wrong_result"
    assert classify("shout: ->", "shout", "HI", experts) == "spec_fails"
    assert classify("multiply: 2 * 2 ->", "shout", "HI", experts) == "unknown_expert"


def test_total_rewards_weights_and_lengths():
    one = lambda prompts, completions, **kw: [1.0] * len(completions)  # noqa: E731
    length = lambda prompts, completions, **kw: [float(len(c)) for c in completions]  # noqa: E731
    assert total_rewards([one, length], ["p", "p"], ["ab", "c"], weights=[0.5, 2.0]) == [4.5, 2.5]
    with pytest.raises(ValueError, match="returned 1 scores"):
        total_rewards([lambda p, c, **kw: [0.0]], ["p", "p"], ["a", "b"])
    with pytest.raises(ValueError, match="weights"):
        total_rewards([one], ["p"], ["a"], weights=[1.0, 1.0])
