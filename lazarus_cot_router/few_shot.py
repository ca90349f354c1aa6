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
from typing import Sequence

from .actions import make_action, passthrough_action
from .decoding import SharedPrefix, decode_batch
from .experts.base import Expert, ExpertError
from .rewriter import RouteResult, execute_route, host_action_for
from .sanitize import sanitize_query
from .worker import run_on_model_thread

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
PROMPT_TAIL = '"\nAction:'

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
        cache_prefix: bool = False,
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
        # Lazarus recomputes the whole prompt for every query; caching the part
        # before the query gives the same actions, faster.
        self.cache_prefix = cache_prefix
        self._prefixes: dict[tuple, SharedPrefix] = {}
        self._passthrough_expert = next((n for n, e in self.experts.items() if _is_passthrough(e)), "none")

    def set_expert_info(self, expert_name: str, description: str, examples: list | None = None) -> None:
        self._descriptions[expert_name] = description
        if examples is not None:
            self._examples[expert_name] = list(examples)

    def build_prompt(self, query: str, available_experts: Sequence[str] | None = None) -> str:
        return self.prompt_head(available_experts) + query + PROMPT_TAIL

    def prompt_head(self, available_experts: Sequence[str] | None = None) -> str:
        """Everything before the query: it is the same for every query."""
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
        head, _, _ = PROMPT.partition("{query}")
        return head.format(expert_descriptions="\n".join(descriptions), few_shot_examples="\n\n".join(shots))

    def rewrite(self, query: str, available_experts: Sequence[str] | None = None):
        return self.rewrite_batch([query], available_experts)[0]

    def rewrite_batch(self, queries: Sequence[str], available_experts: Sequence[str] | None = None):
        return [self.to_action(r, available_experts) for r in self.route_batch(queries, available_experts)]

    def route_batch(self, queries: Sequence[str], available_experts: Sequence[str] | None = None) -> list[RouteResult]:
        """Decode an action for every query; ``expert``/``spec`` of each result
        are the routing expert and spec its JSON names (a passthrough is the
        passthrough expert, e.g. ``chat``)."""
        results = [RouteResult(query=q, raw="") for q in queries]
        head = self.tokenizer.encode(self.prompt_head(available_experts))
        prompts, slots = [], []
        for i, query in enumerate(queries):
            clean, note, _ = sanitize_query(query, self.tokenizer)
            results[i].note = note
            if not clean:
                results[i].error = "empty query"
                continue
            prompts.append(self.tokenizer.encode(clean + PROMPT_TAIL, add_special_tokens=False))
            results[i].prompt_tokens = len(head) + len(prompts[-1])
            slots.append(i)
        if prompts:
            outs = run_on_model_thread(self._generate, head, prompts, tuple(available_experts or ()))
            for i, out in zip(slots, outs):
                self._read_action(results[i], out.text)
                results[i].generated_tokens = len(out.tokens)
        return results

    def _generate(self, head: list[int], prompts: list[list[int]], key: tuple) -> list:
        if not self.cache_prefix:
            return decode_batch(self.model, self.tokenizer, [head + p for p in prompts],
                                max_tokens=self.max_tokens, stop_text=json_closed)
        if key not in self._prefixes:
            self._prefixes[key] = SharedPrefix(self.model, head)
        return decode_batch(self.model, self.tokenizer, prompts, prefix=self._prefixes[key],
                            max_tokens=self.max_tokens, stop_text=json_closed)

    def _read_action(self, result: RouteResult, text: str) -> None:
        result.raw = text
        data = first_json_object(text)
        if data is None:
            result.error = f"no JSON object in {text[:120]!r}"
            return
        name, confidence = data.get("expert", "none"), data.get("confidence", 1.0)
        result.confidence = float(confidence) if isinstance(confidence, (int, float)) and 0 <= confidence <= 1 else 1.0
        if name in (None, "none") or data.get("operation") == "passthrough":
            result.expert, result.spec = self._passthrough_expert, ""
            result.error = f"the model chose passthrough: {data.get('reasoning', '')}".strip()
            return
        if not isinstance(name, str):
            result.error = f"expert {name!r} is not a name"
            return
        result.expert, result.spec = name, spec_from_parameters(data.get("parameters"))
        execute_route(result, self.experts)

    def to_action(self, result: RouteResult, available_experts: Sequence[str] | None = None):
        note = f" ({result.note})" if result.note else ""
        if result.error:
            return passthrough_action(f"passthrough: {result.error}{note}")
        if available_experts is not None and result.expert not in available_experts:
            return passthrough_action(f"passthrough: expert {result.expert!r} is not available{note}")
        host, error = host_action_for(self.experts[result.expert], result.spec)
        if host is None:
            return passthrough_action(f"passthrough: {error}{note}")
        return make_action(host, confidence=result.confidence, reasoning=f"{result.line}{note}")

    def parse_action(self, text: str, available_experts: Sequence[str] | None = None):
        """Turn the model's text into an action; the spec is executed by the
        expert so the reasoning carries a verified result, as for the trained
        router."""
        result = RouteResult(query="", raw="")
        self._read_action(result, text)
        return self.to_action(result, available_experts)


def _is_passthrough(expert: Expert) -> bool:
    try:
        return expert.host_action("").operation == "passthrough"
    except ExpertError:
        return False


def spec_from_parameters(parameters: object) -> str:
    """The spec a JSON action carries: its single string parameter."""
    if not isinstance(parameters, dict):
        return ""
    values = [v for v in parameters.values() if isinstance(v, (str, int, float))]
    return str(values[0]) if values else ""
