"""The chat expert: an empty spec that hands the query back to the base model."""

from __future__ import annotations

from .base import Expert, HostAction, SpecSyntaxError, require_spec
from .vocabulary import SpecVocabulary

RESPONSE = "[response]"


class ChatExpert(Expert):
    name = "chat"
    description = "anything else, answered by the model itself: 'chat: ->'"
    system_prompt_example = ("Hello", "")
    calibration_prompts = (
        "Tell me a joke", "What's the capital of France?", "Hello", "How can I sleep better?",
        "Who wrote 1984?", "Write a haiku about the ocean", "What does serendipity mean?",
        "How do I reverse a string in Python?", "Why do time zones exist?", "What happened in 1969?",
        "How do I schedule a meeting in Outlook?", "Is 7 a lucky number?",
    )

    def check_spec(self, spec: str) -> None:
        if require_spec(spec):
            raise SpecSyntaxError("chat takes an empty spec")

    def execute(self, spec: str) -> str:
        self.check_spec(spec)
        return RESPONSE

    def answer(self, spec: str) -> None:
        self.check_spec(spec)
        return None

    def host_action(self, spec: str) -> HostAction:
        self.check_spec(spec)
        return HostAction("none", "passthrough", {})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        return SpecVocabulary("empty")

    few_shot_specs = (("Hello", ""), ("Tell me a joke", ""), ("What's the capital of France?", ""))
