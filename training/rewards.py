"""Verified rewards for RL: the expert executes the sampled spec.

A sampled completion is a routing line up to ``->``. :func:`classify` parses it
and, when it names the gold expert, runs that expert's :meth:`answer` on the
spec, so the result always comes from the expert, never from the model. Each
outcome maps to a reward level (:class:`RewardLevels`). Reward functions use
TRL's signature ``f(prompts, completions, **kwargs) -> list[float]`` where the
keyword arguments carry the dataset's gold columns (``expert``, ``answer``, ...),
one entry per completion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

from lazarus_cot_router.experts.base import Expert, ExpertError
from lazarus_cot_router.grammar import parse_line

from .evaluate import same_answer

OUTCOMES = ("correct", "wrong_result", "spec_fails", "wrong_expert", "unknown_expert", "unparseable")

RewardFunc = Callable[..., list[float]]


@dataclass(frozen=True)
class RewardLevels:
    correct: float = 1.0
    wrong_result: float = 0.7
    spec_fails: float = 0.5
    wrong_expert: float = 0.3
    unparseable: float = 0.0

    @classmethod
    def from_config(cls, config) -> "RewardLevels":
        """Levels from a config's ``rewards`` mapping (or ``reward_<outcome>``
        fields); missing ones keep their defaults."""
        rewards = getattr(config, "rewards", None)
        if rewards is None:
            rewards = {k: getattr(config, f"reward_{k}") for k in asdict(cls()) if hasattr(config, f"reward_{k}")}
        return cls(**{k: float(v) for k, v in dict(rewards).items()})

    def of(self, outcome: str) -> float:
        if outcome == "unknown_expert":
            return self.unparseable
        return getattr(self, outcome)


def completion_text(completion) -> str:
    """The text of a completion given as a string, a TRL conversational
    message list, or an object with a ``text`` attribute."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(getattr(completion, "text", completion))


def classify(text: str, gold_expert: str, gold_answer: str | None, experts: Mapping[str, Expert]) -> str:
    """The outcome (one of :data:`OUTCOMES`) of one sampled routing line.

    A gold answer of ``None`` (an expert without a checkable answer, such as a
    passthrough) makes any executing spec of the right expert correct. Answers
    compare as :func:`training.evaluate.same_answer` does, so "correct" here
    is "execution" accuracy there."""
    line = parse_line(text)
    if not line:
        return "unparseable"
    if line.expert not in experts:
        return "unknown_expert"
    if line.expert != gold_expert:
        return "wrong_expert"
    try:
        got = experts[line.expert].answer(line.spec)
    except ExpertError:
        return "spec_fails"
    if same_answer(got, gold_answer):
        return "correct"
    return "wrong_result"


def classify_batch(completions: Sequence, experts: Mapping[str, Expert], *, expert: Sequence[str], answer: Sequence[str | None], **_) -> list[str]:
    return [classify(completion_text(c), e, a, experts) for c, e, a in zip(completions, expert, answer, strict=True)]


def make_verified_reward(experts: Mapping[str, Expert], levels: RewardLevels = RewardLevels()) -> RewardFunc:
    """A TRL-style reward function scoring completions against the gold
    ``expert`` and ``answer`` columns with the given experts and levels."""

    def verified_reward(prompts, completions, **kwargs) -> list[float]:
        return [levels.of(o) for o in classify_batch(completions, experts, **kwargs)]

    return verified_reward


def verified_reward(prompts, completions, **kwargs) -> list[float]:
    """:func:`make_verified_reward` over the registered experts, default levels
    (``experts=`` and ``levels=`` keyword arguments override them)."""
    experts = kwargs.pop("experts", None)
    levels = kwargs.pop("levels", None) or RewardLevels()
    if experts is None:
        from lazarus_cot_router.plugins import get_experts

        experts = get_experts()
    return make_verified_reward(experts, levels)(prompts, completions, **kwargs)


def total_rewards(reward_funcs: Sequence[RewardFunc], prompts, completions, weights: Sequence[float] | None = None, **columns) -> list[float]:
    """The weighted sum of every reward function's scores, per completion (as TRL)."""
    weights = list(weights) if weights is not None else [1.0] * len(reward_funcs)
    if len(weights) != len(reward_funcs):
        raise ValueError(f"{len(weights)} reward weights for {len(reward_funcs)} reward functions")
    totals = [0.0] * len(completions)
    for func, weight in zip(reward_funcs, weights):
        scores = func(prompts, completions, **columns)
        if len(scores) != len(completions):
            raise ValueError(f"reward function {getattr(func, '__name__', func)!r} returned {len(scores)} scores for {len(completions)} completions")
        totals = [t + weight * float(s) for t, s in zip(totals, scores)]
    return totals
