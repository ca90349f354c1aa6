"""``TrainedCoTRewriter``: the drop-in replacement for Lazarus's few-shot rewriter.

The model (optionally with a trained adapter) reads the query in its native chat
template with the router system prompt and writes ``<expert>: <spec> ->``; the
expert executes the spec and writes the result. Anything that goes wrong (an
unparseable line, an expert the host did not offer, a spec that does not
execute) becomes a passthrough action whose ``reasoning`` says why.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from .actions import host_rewriter_base, make_action, passthrough_action
from .decoding import Decoded, SharedPrefix, decode_batch, name_probability
from .experts.base import Expert, ExpertError
from .grammar import ParseError, parse_line, render_line
from .prompts import encode_prompt, end_of_turn_id, router_system_prompt
from .sanitize import sanitize_query

DEFAULT_MAX_TOKENS = 64


@dataclass
class RouteResult:
    """Everything one routing decision produced, before it becomes an action."""

    query: str
    raw: str  # what the model wrote
    line: str | None = None  # the full line with the executed result
    expert: str | None = None
    spec: str | None = None
    result: str | None = None
    confidence: float = 0.0
    error: str | None = None  # why this is a passthrough, if it is one
    note: str = ""  # e.g. that the query was truncated
    prompt_tokens: int = 0
    generated_tokens: int = 0


class TrainedCoTRewriter(host_rewriter_base()):
    """Route queries with a (fine-tuned) chat model.

    ``model`` is a model SPEC (``embedded``, a local mlx-lm directory, or a hub
    id), ``adapter`` an mlx-lm adapter directory (``None``: the base model with
    the router system prompt, the seed's untrained baseline). ``experts`` limits
    the registered experts the router knows; ``None`` means all of them."""

    def __init__(
        self,
        model: str = "embedded",
        adapter: str | None = None,
        experts: Sequence[str] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        routing: str = "text",
        calibration: str | None = None,
        clock=None,
        loaded=None,
    ):
        from .models import load
        from .plugins import get_experts

        if routing not in ("text", "hidden"):
            raise ValueError(f"routing must be 'text' or 'hidden', not {routing!r}")
        if routing == "hidden":
            raise NotImplementedError("routing='hidden' needs calibration support, not built yet")
        registry = get_experts(clock=clock)
        unknown = [name for name in (experts or []) if name not in registry]
        if unknown:
            raise ValueError(f"unknown experts {unknown}; registered: {sorted(registry)}")
        self.experts: dict[str, Expert] = {
            name: registry[name] for name in (experts or registry)
        }
        self.model_spec, self.adapter = model, adapter
        self.model, self.tokenizer = loaded if loaded is not None else load(model, adapter_path=adapter)
        self.max_tokens = max_tokens
        self.routing = routing
        self.system_prompt = router_system_prompt(list(self.experts.values()))
        self.prefix_ids, _ = encode_prompt(self.tokenizer, self.system_prompt, "")
        self._eot = end_of_turn_id(self.tokenizer)
        self._lock = threading.Lock()
        self._prefix: SharedPrefix | None = None
        self._expert_info: dict[str, dict] = {}

    # -- Lazarus interface -------------------------------------------------
    def set_expert_info(self, expert_name: str, description: str, examples: list | None = None) -> None:
        """Lazarus's wrapper announces its experts; the trained router already
        knows its own, so this is recorded for introspection only."""
        self._expert_info[expert_name] = {"description": description, "examples": examples or []}

    def rewrite(self, query: str, available_experts: Sequence[str] | None = None):
        return self.rewrite_batch([query], available_experts)[0]

    def rewrite_batch(self, queries: Sequence[str], available_experts: Sequence[str] | None = None):
        return [self.to_action(r, available_experts) for r in self.route_batch(queries)]

    # -- routing -----------------------------------------------------------
    def route_batch(self, queries: Sequence[str]) -> list[RouteResult]:
        """Decode and execute a routing line for every query (one batch)."""
        results: list[RouteResult] = []
        pending: list[tuple[int, list[int]]] = []
        for i, query in enumerate(queries):
            clean, note = sanitize_query(query, self.tokenizer)
            results.append(RouteResult(query=query, raw="", note=note))
            if not clean:
                results[i].error = "empty query"
                continue
            _, suffix = encode_prompt(self.tokenizer, self.system_prompt, clean)
            results[i].prompt_tokens = len(self.prefix_ids) + len(suffix)
            pending.append((i, suffix))
        if pending:
            decoded = self._decode([suffix for _, suffix in pending])
            for (i, _), out in zip(pending, decoded):
                self._execute(results[i], out)
        return results

    def _decode(self, suffixes: list[list[int]]) -> list[Decoded]:
        with self._lock:  # one generation at a time: MLX streams are shared
            if self._prefix is None:
                self._prefix = SharedPrefix(self.model, self.prefix_ids)
            return decode_batch(
                self.model,
                self.tokenizer,
                suffixes,
                prefix=self._prefix,
                max_tokens=self.max_tokens,
                stop_token_ids=[self._eot],
            )

    def _execute(self, result: RouteResult, out: Decoded) -> None:
        result.raw = out.text
        result.generated_tokens = len(out.tokens)
        parsed = parse_line(out.text)
        if isinstance(parsed, ParseError):
            result.error = f"unparseable model output ({parsed.reason}): {out.text[:120]!r}"
            return
        result.expert, result.spec = parsed.expert, parsed.spec
        result.confidence = name_probability(self.tokenizer, out)
        expert = self.experts.get(parsed.expert)
        if expert is None:
            result.error = f"the model chose {parsed.expert!r}, which is not a registered expert"
            return
        try:
            result.result = expert.execute(parsed.spec)
        except ExpertError as exc:
            result.error = f"{parsed.expert} could not execute {parsed.spec!r}: {exc.reason}"
            return
        result.line = render_line(parsed.expert, parsed.spec, result.result)

    def to_action(self, result: RouteResult, available_experts: Sequence[str] | None = None):
        note = f" ({result.note})" if result.note else ""
        if result.error:
            return passthrough_action(f"passthrough: {result.error}{note}", confidence=result.confidence)
        expert = self.experts[result.expert]
        host = expert.host_action(result.spec)
        if available_experts is not None and not {result.expert, host.expert} & set(available_experts) and host.operation != "passthrough":
            return passthrough_action(
                f"passthrough: {result.line} routes to {host.expert!r}, which is not among the "
                f"available experts {list(available_experts)}{note}",
                confidence=result.confidence,
            )
        return make_action(host, confidence=result.confidence, reasoning=f"{result.line}{note}")
