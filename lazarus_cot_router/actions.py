"""The host framework's action and rewriter interface, with local fallbacks.

Lazarus executes a ``chuk_virtual_expert.VirtualExpertAction`` and calls
rewriters derived from
``chuk_lazarus.inference.virtual_experts.cot_rewriter.CoTRewriter``. When
those packages are installed their classes are used; otherwise the dataclass
and base class here stand in with the same fields and methods.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from .experts.base import HostAction

NONE_EXPERT = "none"
PASSTHROUGH = "passthrough"


@dataclass
class VirtualExpertAction:
    """What the host executes: ``expert`` and ``operation`` with ``parameters``;
    ``expert="none"`` passes the query to the base model."""

    expert: str
    operation: str
    parameters: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    reasoning: str = ""

    def __post_init__(self) -> None:
        for name in ("expert", "operation", "reasoning"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.parameters, dict):
            raise TypeError(f"parameters must be a dict, got {type(self.parameters).__name__}")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)):
            raise TypeError(f"confidence must be a number, got {type(self.confidence).__name__}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        self.confidence = float(self.confidence)

    @classmethod
    def none_action(cls, reasoning: str = "") -> VirtualExpertAction:
        return cls(expert=NONE_EXPERT, operation=PASSTHROUGH, parameters={}, confidence=1.0, reasoning=reasoning)

    @classmethod
    def from_json(cls, text: str) -> VirtualExpertAction:
        data = json.loads(text)
        return cls(
            expert=data.get("expert", NONE_EXPERT),
            operation=data.get("operation", PASSTHROUGH),
            parameters=data.get("parameters", {}),
            confidence=data.get("confidence", 1.0),
            reasoning=data.get("reasoning", ""),
        )

    def is_passthrough(self) -> bool:
        return self.expert == NONE_EXPERT or self.operation == PASSTHROUGH

    def model_dump(self) -> dict[str, Any]:
        return {
            "expert": self.expert,
            "operation": self.operation,
            "parameters": dict(self.parameters),
            "confidence": self.confidence,
            "reasoning": self.reasoning,
        }

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())

    def to_json(self) -> str:
        return self.model_dump_json()


class CoTRewriterBase(ABC):
    """The host's rewriter interface: ``rewrite`` one query to an action."""

    @abstractmethod
    def rewrite(self, query: str, available_experts: list[str]) -> Any:
        """The action for ``query``, choosing among ``available_experts``."""

    def rewrite_batch(self, queries: Sequence[str], available_experts: list[str]) -> list[Any]:
        return [self.rewrite(query, available_experts) for query in queries]

    def set_expert_info(self, expert_name: str, description: str, examples: list[dict]) -> None:
        """Called by the host wrapper with each expert's description and examples."""
        self.expert_info[expert_name] = {"description": description, "examples": list(examples)}

    @property
    def expert_info(self) -> dict[str, dict[str, Any]]:
        return self.__dict__.setdefault("_expert_info", {})


def host_action_class() -> type:
    """``chuk_virtual_expert.VirtualExpertAction`` if installed, else ours."""
    try:
        from chuk_virtual_expert import VirtualExpertAction as host_class
    except ImportError:
        return VirtualExpertAction
    return host_class


def host_rewriter_base() -> type:
    """The host's ``CoTRewriter`` base class if Lazarus is installed, else
    :class:`CoTRewriterBase`."""
    try:
        from chuk_lazarus.inference.virtual_experts.cot_rewriter import CoTRewriter
    except ImportError:
        return CoTRewriterBase
    return CoTRewriter


def clamp_confidence(value: float) -> float:
    """``value`` forced into [0, 1]; NaN counts as no confidence."""
    value = float(value)
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


def make_action(host: HostAction, confidence: float, reasoning: str) -> Any:
    """The host action class built from an expert's :class:`HostAction`."""
    return host_action_class()(
        expert=host.expert,
        operation=host.operation,
        parameters=dict(host.parameters),
        confidence=clamp_confidence(confidence),
        reasoning=reasoning,
    )


def passthrough_action(reasoning: str, confidence: float = 1.0) -> Any:
    """Send the query to the base model unchanged, saying why."""
    return make_action(HostAction(NONE_EXPERT, PASSTHROUGH, {}), confidence, reasoning)
