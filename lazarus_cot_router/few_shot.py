"""``FewShotCoTRewriter``: the baseline this project replaces, built the way
Lazarus builds it, so the two can be compared on the same model.

The prompt lists each available expert's description, up to N examples per
expert as ``Query: "..."`` / ``Action: {json}`` pairs, two fixed passthrough
examples, then the query; greedy decoding runs until the first JSON object
closes (or 200 tokens); the first JSON object becomes the action. Any failure is
a passthrough. As in Lazarus, the prompt is a raw completion prompt (no chat
template) and nothing is cached between queries.
"""

from __future__ import annotations

import json
import threading
from typing import Sequence

from .actions import make_action, passthrough_action
from .decoding import decode_batch
from .experts.base import Expert, ExpertError
from .grammar import render_line
from .sanitize import sanitize_query

PROMPT = """You extract structured actions from user queries.

## Available Experts
{expert_descriptions}

## Output Format
Respond with ONLY a JSON object:
{{"expert": "<name or none>", "operation": "<op>", "parameters": {{...}}, "confidence": <0-1>, "reasoning": "<brief>"}}

## Examples
{few_shot_examples}

## Query
Query: "{query}"
Action:"""

PASSTHROUGH_EXAMPLES = (
    ("Tell me a joke", "Entertainment request, not an expert task"),
    ("What is the capital of France?", "Geography question, not an expert task"),
)


def example_action(expert: Expert, spec: str) -> dict:
    """The JSON action a few-shot example shows for ``expert`` and ``spec``."""
    host = expert.host_action(spec)
    if host.operation == "passthrough":
        return {"expert": "none", "operation": "passthrough", "parameters": {}, "confidence": 1.0,
                "reasoning": "not an expert task"}
    return {"expert": expert.name, "operation": host.operation, "parameters": dict(host.parameters),
            "confidence": 1.0, "reasoning": f"{expert.name} task"}


def first_json_object(text: str) -> dict | None:
    """The first balanced ``{...}`` in ``text`` parsed as JSON, else ``None``."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = not in_string
            elif not in_string and ch == "{":
                depth += 1
            elif not in_string and ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        value = json.loads(text[start : i + 1])
                    except ValueError:
                        break
                    return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None


def json_closed(text: str) -> bool:
    return text.count("{") > 0 and text.count("{") == text.count("}")


class FewShotCoTRewriter:
    """The Lazarus few-shot baseline over this project's experts."""

    def __init__(
        self,
        model: str = "embedded",
        experts: Sequence[str] | None = None,
        examples_per_expert: int = 3,
        max_tokens: int = 200,
        clock=None,
        loaded=None,
    ):
        from .models import load
        from .plugins import get_experts

        registry = get_experts(clock=clock)
        unknown = [name for name in (experts or []) if name not in registry]
        if unknown:
            raise ValueError(f"unknown experts {unknown}; registered: {sorted(registry)}")
        self.experts: dict[str, Expert] = {name: registry[name] for name in (experts or registry)}
        self.model, self.tokenizer = loaded if loaded is not None else load(model, adapter_path=None)
        self.examples_per_expert = examples_per_expert
        self.max_tokens = max_tokens
        self._descriptions = {name: e.description for name, e in self.experts.items()}
        self._examples = {
            name: [{"query": ex.query, "action": example_action(e, ex.spec)} for ex in e.few_shot_examples()]
            for name, e in self.experts.items()
        }
        self._lock = threading.Lock()

    def set_expert_info(self, expert_name: str, description: str, examples: list | None = None) -> None:
        self._descriptions[expert_name] = description
        if examples is not None:
            self._examples[expert_name] = list(examples)

    def build_prompt(self, query: str, available_experts: Sequence[str] | None = None) -> str:
        names = [n for n in (available_experts or self.experts) if n in self._descriptions]
        descriptions = [f"- **{n}**: {self._descriptions[n]}" for n in names]
        shots = []
        for name in names:
            for ex in self._examples.get(name, [])[: self.examples_per_expert]:
                if ex["action"].get("expert") == name:
                    shots.append(f'Query: "{ex["query"]}"\nAction: {json.dumps(ex["action"])}')
        for text, why in PASSTHROUGH_EXAMPLES:
            action = {"expert": "none", "operation": "passthrough", "parameters": {}, "confidence": 1.0, "reasoning": why}
            shots.append(f'Query: "{text}"\nAction: {json.dumps(action)}')
        return PROMPT.format(
            expert_descriptions="\n".join(descriptions), few_shot_examples="\n\n".join(shots), query=query
        )

    def rewrite(self, query: str, available_experts: Sequence[str] | None = None):
        return self.rewrite_batch([query], available_experts)[0]

    def rewrite_batch(self, queries: Sequence[str], available_experts: Sequence[str] | None = None):
        actions: list = [None] * len(queries)
        prompts, slots = [], []
        for i, query in enumerate(queries):
            clean, _ = sanitize_query(query, self.tokenizer)
            if not clean:
                actions[i] = passthrough_action("passthrough: empty query")
                continue
            prompts.append(self.tokenizer.encode(self.build_prompt(clean, available_experts)))
            slots.append(i)
        if prompts:
            with self._lock:
                outs = decode_batch(
                    self.model, self.tokenizer, prompts, max_tokens=self.max_tokens, stop_text=json_closed
                )
            for i, out in zip(slots, outs):
                actions[i] = self.parse_action(out.text, available_experts)
        return actions

    def parse_action(self, text: str, available_experts: Sequence[str] | None = None):
        """Turn the model's text into an action; the spec is executed by the
        expert so the reasoning carries a verified result, as for the trained
        router."""
        data = first_json_object(text)
        if data is None:
            return passthrough_action(f"passthrough: no JSON object in {text[:120]!r}")
        name = data.get("expert", "none")
        if name in (None, "none") or data.get("operation") == "passthrough":
            return passthrough_action(f"passthrough: {data.get('reasoning', '')}".strip())
        expert = self.experts.get(name) if isinstance(name, str) else None
        if expert is None or (available_experts is not None and name not in available_experts):
            return passthrough_action(f"passthrough: unknown or unavailable expert {name!r}")
        spec = spec_from_parameters(data.get("parameters"))
        try:
            result = expert.execute(spec)
        except ExpertError as exc:
            return passthrough_action(f"passthrough: {name} could not execute {spec!r}: {exc.reason}")
        confidence = data.get("confidence", 1.0)
        if not isinstance(confidence, (int, float)) or not 0.0 <= confidence <= 1.0:
            confidence = 1.0
        return make_action(expert.host_action(spec), confidence=float(confidence),
                           reasoning=render_line(name, spec, result))


def spec_from_parameters(parameters: object) -> str:
    """The spec a JSON action carries: its single string parameter."""
    if not isinstance(parameters, dict):
        return ""
    values = [v for v in parameters.values() if isinstance(v, (str, int, float))]
    return str(values[0]) if values else ""
