"""The default experts, in the order the router's prompt lists them."""

from __future__ import annotations

from .arithmetic import AddExpert, DivideExpert, MultiplyExpert, SubtractExpert
from .base import Expert
from .chat import ChatExpert
from .schedule import ScheduleExpert
from .time import Clock, TimeExpert
from .word_problem import WordProblemExpert

DEFAULT_EXPERT_NAMES = ("multiply", "add", "subtract", "divide", "word_problem", "schedule", "time", "chat")


def default_experts(clock: Clock | None = None) -> list[Expert]:
    """Fresh instances of the eight default experts; ``clock`` (returning an
    aware UTC datetime) is passed to the time expert."""
    return [
        MultiplyExpert(), AddExpert(), SubtractExpert(), DivideExpert(),
        WordProblemExpert(), ScheduleExpert(), TimeExpert(clock), ChatExpert(),
    ]
