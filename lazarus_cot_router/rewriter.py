"""``TrainedCoTRewriter``: the drop-in replacement for Lazarus's few-shot rewriter.

The model (optionally with a trained adapter) reads the query in its native chat
template with the router system prompt and writes ``<expert>: <spec> ->``; the
expert executes the spec and writes the result. Anything that goes wrong (an
unparseable line, an expert the host did not offer, a spec that does not
execute) becomes a passthrough action whose ``reasoning`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .actions import host_rewriter_base, make_action, passthrough_action
from .adapters import adapter_query_layout
from .constrain import DECODING_MODES, DEFAULT_DECODING, LineConstraint
from .constrained_choice import ConstrainedChoice, judged_share, line_masked
from .decoding import Decoded, SharedPrefix, decode_batch, name_probability
from .experts.base import Expert, ExpertError
from .grammar import ParseError, parse_line, render_line
from .prompts import encode_prompt, end_of_turn_id, router_system_prompt
from .sampling import sample_completions, token_checks
from .sanitize import sanitize_query
from .worker import run_on_model_thread

DEFAULT_MAX_TOKENS = 64
#: Lines sampled for a second opinion on a line whose result its expert does not usually give.
DEFAULT_RESAMPLE = 8
RESAMPLE_TEMPERATURE = 0.7
#: A line for which the constraint had to mask more than this share of the model's
#: probability at one step, as decoded and on the line's canonical tokens, passes through.
DEFAULT_MAX_MASKED = 0.95


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
    masked: float = 0.0  # the largest share of the model's probability the constraint masked at one step
    masked_canonical: float | None = None  # the same, on the line's canonical tokenization (where it was judged)
    overridden: bool = False  # passed through because both shares were above the rewriter's max_masked
    note: str = ""  # e.g. that the query was truncated
    prompt_tokens: int = 0
    generated_tokens: int = 0
    hidden_expert: str | None = None  # the calibrated hidden-state route, if any
    hidden_scores: dict | None = None

    @property
    def routes_agree(self) -> bool | None:
        """Whether the text and hidden-state routes name the same expert."""
        if self.hidden_scores is None:
            return None
        return self.hidden_expert == self.expert


class TrainedCoTRewriter(host_rewriter_base()):
    """Route queries with a (fine-tuned) chat model.

    ``model`` is a model SPEC (``embedded``, a local mlx-lm directory, or a hub
    id), ``adapter`` an mlx-lm adapter directory (``None``: the base model with
    the router system prompt, the seed's untrained baseline). ``experts`` limits
    the registered experts the router knows; ``None`` means all of them.
    ``decoding`` is ``free``, ``generic`` or ``full`` (see :mod:`.constrain`).

    A line whose result is not one its expert usually gives
    (:meth:`Expert.usual_result`: a word problem's count that comes out
    negative or fractional) gets a second opinion: ``resample`` lines of the
    same query are sampled under the same constraint and the result most of
    the usual ones agree on is taken (self-consistency). With none, an
    in-range first line stands, and one out of range takes the result most
    in-range samples agree on, or passes through when none is in range (or
    ``resample`` is 0).

    Where the constraint had to mask more than ``max_masked`` of the model's
    probability at one step, the line the model preferred left the grammar or
    the query's words (a number the query does not write, a digit of another
    base, free text): the query passes through instead of running the valid
    line the constraint forced. 1 never passes through for this. Such a line
    is first judged again on its own canonical tokens, the way training wrote
    it (:func:`~.constrained_choice.line_masked`): greedy decoding may take a
    valid token that splits a copied word oddly ("g", then "ro" for "groceries"),
    and the model, never having seen that split, wants nothing valid next. The
    line passes through only when both shares are above ``max_masked``.
    ``canonical_from``: the share above which a line is judged again (``None``, the
    default: ``max_masked``; ``bench/max_masked.py`` lowers it to see every threshold)."""

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
        decoding: str = DEFAULT_DECODING,
        resample: int = DEFAULT_RESAMPLE,
        max_masked: float = DEFAULT_MAX_MASKED,
    ):
        from .models import load
        from .plugins import get_experts

        if decoding not in DECODING_MODES:
            raise ValueError(f"decoding must be one of {', '.join(DECODING_MODES)}, not {decoding!r}")
        if resample < 0:
            raise ValueError(f"resample must be 0 or more, not {resample}")
        if not 0.0 <= max_masked <= 1.0:
            raise ValueError(f"max_masked must be between 0 and 1, not {max_masked}")
        if routing not in ("text", "hidden"):
            raise ValueError(f"routing must be 'text' or 'hidden', not {routing!r}")
        if routing == "hidden" and calibration is None:
            raise ValueError("routing='hidden' needs a calibration directory (see `lazarus-cot-router calibrate`)")
        registry = get_experts(clock=clock)
        unknown = [name for name in (experts or []) if name not in registry]
        if unknown:
            raise ValueError(f"unknown experts {unknown}; registered: {sorted(registry)}")
        self.experts: dict[str, Expert] = {
            name: registry[name] for name in (experts or registry)
        }
        for expert in self.experts.values():
            expert.prepare()
        self.model_spec, self.adapter = model, adapter
        self.model, self.tokenizer = loaded if loaded is not None else load(model, adapter_path=adapter)
        self.max_tokens = max_tokens
        self.decoding = decoding
        self.resample = resample
        self.max_masked = max_masked
        self.canonical_from: float | None = None  # judge a line again above this share (None: max_masked)
        self.routing = routing
        self.system_prompt = router_system_prompt(list(self.experts.values()))
        self.query_layout = adapter_query_layout(adapter)
        self.prefix_ids, _ = encode_prompt(self.tokenizer, self.system_prompt, "")
        self._eot = end_of_turn_id(self.tokenizer)
        self._prefix: SharedPrefix | None = None
        self._expert_info: dict[str, dict] = {}
        self.hidden_router, self._capture = None, None
        if calibration is not None:
            self._load_calibration(calibration)

    def _load_calibration(self, calibration: str) -> None:
        from .hidden import install_capture
        from .hidden_route import HiddenRouter, model_identity

        identity = model_identity(self.model_spec, self.adapter)
        self.hidden_router = HiddenRouter.load(calibration, model_identity=identity)
        unknown = [e for e in self.hidden_router.experts if e not in self.experts]
        if unknown:
            raise ValueError(f"calibration {calibration} routes to experts this router lacks: {unknown}")
        if self.hidden_router.position != "prompt_last":
            raise ValueError(
                f"calibration {calibration} reads position {self.hidden_router.position!r}; routing before "
                "generation needs 'prompt_last' (recalibrate with --position prompt_last)"
            )
        hidden_size = getattr(getattr(self.model, "args", None), "hidden_size", None)
        if isinstance(hidden_size, int) and hidden_size != self.hidden_router.dim:
            raise ValueError(
                f"calibration {calibration} has hidden size {self.hidden_router.dim} but the model has "
                f"{hidden_size}: rerun `lazarus-cot-router calibrate` on this model"
            )
        self._capture = install_capture(self.model, [self.hidden_router.layer])

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
        cleaned: list[str] = []
        for i, query in enumerate(queries):
            clean, note, truncated = sanitize_query(query, self.tokenizer)
            cleaned.append(clean)
            results.append(RouteResult(query=query, raw="", note=note))
            if not clean:
                results[i].error = "empty query"
                continue
            if truncated:
                # Routing what was kept would execute part of the request as if it were all of it.
                results[i].error = "the query is too long to route"
                continue
            _, suffix = encode_prompt(self.tokenizer, self.system_prompt, clean, self.query_layout)
            results[i].prompt_tokens = len(self.prefix_ids) + len(suffix)
            pending.append((i, suffix))
        if pending:
            run_on_model_thread(self._route_pending, [results[i] for i, _ in pending], [s for _, s in pending],
                                [cleaned[i] for i, _ in pending])
        return results

    def _route_pending(self, results: list[RouteResult], suffixes: list[list[int]], queries: list[str]) -> None:
        if self._prefix is None:
            self._prefix = SharedPrefix(self.model, self.prefix_ids)
        if self.hidden_router is not None:
            self._route_hidden(results, suffixes)
        if self.routing == "hidden":
            self._decode_forced(results, suffixes, queries)
        else:
            for result, out in zip(results, self._decode(suffixes, queries)):
                self._execute(result, out)
        self._second_opinions(results, suffixes, queries)

    def _decode(self, suffixes: list[list[int]], queries: list[str], heads: list[str] | None = None) -> list[Decoded]:
        processors = None
        if self.decoding != "free":
            processors = [self._constraint(q, head) for q, head in zip(queries, heads or [""] * len(queries))]
        outs = decode_batch(
            self.model,
            self.tokenizer,
            suffixes,
            prefix=self._prefix,
            max_tokens=self.max_tokens,
            stop_token_ids=[self._eot],
            logits_processors=processors,
        )
        for out, processor, suffix in zip(outs, processors or [], suffixes):
            out.masked = processor.masked
            if processor.dead:
                out.finish = "dead_end"
                continue
            judge_from = self.max_masked if self.canonical_from is None else self.canonical_from
            if out.masked > judge_from and out.finish == "arrow":
                out.masked_canonical = line_masked(self.model, self.tokenizer, self._prefix.fork(), suffix,
                                                   out.text, processor)
            if judged_share(out.masked, out.masked_canonical) > self.max_masked:
                out.finish = "overridden"
        return outs

    def _second_opinions(self, results: list[RouteResult], suffixes: list[list[int]], queries: list[str]) -> None:
        """Resample the lines whose result their expert does not usually give (see the class)."""
        redo = [k for k, r in enumerate(results) if r.error is None and not self.experts[r.expert].usual_result(r.result)]
        if not redo:
            return
        n = self.resample
        checks = None
        if self.decoding != "free" and n:
            checks = token_checks(self.experts, self.tokenizer, [queries[k] for k in redo],
                                  sorted({self._eot, *self.tokenizer.eos_token_ids}), n, self.decoding)
        groups = sample_completions(self.model, self.tokenizer, self._prefix, [suffixes[k] for k in redo],
                                    num_generations=n, temperature=RESAMPLE_TEMPERATURE, max_tokens=self.max_tokens,
                                    stop_token_ids=[self._eot], token_checks=checks) if n else [[] for _ in redo]
        for j, (k, group) in enumerate(zip(redo, groups)):
            first = results[k]
            in_range = self._vote(first, group, checks[j * n:(j + 1) * n] if checks else None)
            usual = {key: votes for key, votes in in_range.items() if self.experts[key[0]].usual_result(key[1])}
            in_range_first = self.experts[first.expert].gives_result(first.result)
            if usual:
                why = "unusual" if in_range_first else "out of range"
                agreeing = max(usual.values(), key=len)
            elif in_range_first:
                first.note = "; ".join(filter(None, [first.note, f"none of {n} sampled lines gave a usual result"]))
                continue
            elif in_range:
                why = "out of range"
                agreeing = max(in_range.values(), key=len)
            else:
                first.error = (f"{first.line} gives a result {first.expert} does not give, and none of "
                               f"{n} sampled lines did better")
                continue
            best = agreeing[0]
            first.raw, first.line, first.expert, first.spec, first.result = (
                best.raw, best.line, best.expert, best.spec, best.result)
            first.confidence = len(agreeing) / n
            first.note = "; ".join(filter(None, [first.note, f"{len(agreeing)} of {n} sampled lines agree "
                                                 f"(the first line's result was {why})"]))

    def _vote(self, first: RouteResult, group: list[Decoded], checks) -> dict[tuple, list[RouteResult]]:
        """Run the sampled lines; group those with an in-range result by (expert, result)."""
        in_range: dict[tuple, list[RouteResult]] = {}
        for i, out in enumerate(group):
            if checks is not None and not checks[i].constraint.allows(out.text):
                continue  # nothing the constraint accepted was likely enough: not a line to run
            sample = RouteResult(query=first.query, raw="")
            self._execute(sample, out)
            if self.routing == "hidden" and sample.expert != first.expert:
                continue  # the hidden state chose the expert; a sample only gets its spec a second opinion
            if sample.error is None and self.experts[sample.expert].gives_result(sample.result):
                in_range.setdefault((sample.expert, sample.result), []).append(sample)
        return in_range

    def _constraint(self, query: str, head: str = "") -> ConstrainedChoice:
        stops = {self._eot, *self.tokenizer.eos_token_ids}
        constraint = LineConstraint.for_experts(self.experts, query, self.decoding)
        return ConstrainedChoice(constraint, self.tokenizer, banned=stops, head=head)

    def _route_hidden(self, results: list[RouteResult], suffixes: list[list[int]]) -> None:
        routes = self.hidden_router.route_prompts(self.model, self._capture, suffixes, prefix=self._prefix)
        for result, (expert, scores) in zip(results, routes):
            result.hidden_expert, result.hidden_scores = expert, scores

    def _decode_forced(self, results: list[RouteResult], suffixes: list[list[int]], queries: list[str]) -> None:
        """Hidden-state routing: the expert is already chosen, so its name is
        written into the answer and the model decodes only the spec."""
        forced, heads, forced_queries = [], [], []
        for result, suffix, query in zip(results, suffixes, queries):
            head = f"{result.hidden_expert}:" if result.hidden_expert else None
            heads.append(head)
            if head is not None:
                forced.append(suffix + self.tokenizer.encode(head, add_special_tokens=False))
                forced_queries.append(query)
        outs = iter(self._decode(forced, forced_queries, [h for h in heads if h is not None]))
        for result, head in zip(results, heads):
            if head is None:
                result.error = "no expert direction is above its threshold"
                continue
            out = next(outs)
            out.text = f"{head}{out.text}"
            self._execute(result, out, confidence=_sigmoid(result.hidden_scores[result.hidden_expert]))

    def _execute(self, result: RouteResult, out: Decoded, confidence: float | None = None) -> None:
        result.raw = out.text
        result.generated_tokens = len(out.tokens)
        result.masked, result.masked_canonical = out.masked, out.masked_canonical
        if out.finish == "dead_end":
            result.error = f"no valid routing line for this query (the model began {out.text[:120]!r})"
            return
        if out.finish == "overridden":
            result.overridden = True
            canonical = "" if out.masked_canonical is None else f", {out.masked_canonical:.1%} on the line's own tokens"
            result.error = (f"the constraint masked {out.masked:.1%} of the model's probability at one step{canonical} "
                            f"(the limit is {self.max_masked:.1%}): the line the model preferred leaves the "
                            f"grammar or the query's words ({out.text[:120]!r} is the valid line it forced)")
            return
        parsed = parse_line(out.text)
        if isinstance(parsed, ParseError):
            result.error = f"unparseable model output ({parsed.reason}): {out.text[:120]!r}"
            return
        result.expert, result.spec = parsed.expert, parsed.spec
        result.confidence = name_probability(self.tokenizer, out) if confidence is None else confidence
        execute_route(result, self.experts)

    def to_action(self, result: RouteResult, available_experts: Sequence[str] | None = None):
        notes = [result.note] if result.note else []
        if result.routes_agree is not None:
            agreement = "agree" if result.routes_agree else "disagree"
            notes.append(f"routes {agreement}: text={result.expert} hidden={result.hidden_expert}"
                         if self.routing == "text" else f"hidden route {result.hidden_expert}")
        note = f" ({'; '.join(notes)})" if notes else ""
        if result.error:
            return passthrough_action(f"passthrough: {result.error}{note}", confidence=result.confidence)
        host, error = host_action_for(self.experts[result.expert], result.spec)
        if host is None:
            return passthrough_action(f"passthrough: {error}{note}", confidence=result.confidence)
        if available_experts is not None and not {result.expert, host.expert} & set(available_experts) and host.operation != "passthrough":
            return passthrough_action(
                f"passthrough: {result.line} routes to {host.expert!r}, which is not among the "
                f"available experts {list(available_experts)}{note}",
                confidence=result.confidence,
            )
        return make_action(host, confidence=result.confidence, reasoning=f"{result.line}{note}")


def execute_route(result: RouteResult, experts: dict[str, Expert]) -> None:
    """Execute ``result.spec`` with ``result.expert``: fills ``result`` and
    ``line``, or ``error`` with the reason. Never raises."""
    expert = experts.get(result.expert)
    spec = result.spec or ""
    if expert is None:
        result.error = f"the model chose {result.expert!r}, which is not a registered expert"
        return
    try:
        result.result = expert.execute(spec)
    except ExpertError as exc:
        result.error = f"{result.expert} could not execute {spec[:120]!r}: {exc.reason}"
        return
    except Exception as exc:  # a faulty (third-party) expert must not crash the router
        result.error = f"{result.expert} failed on {spec[:120]!r}: {type(exc).__name__}: {str(exc)[:120]}"
        return
    result.line = render_line(result.expert, spec, result.result)


def host_action_for(expert: Expert, spec: str):
    """``(HostAction, None)``, or ``(None, reason)`` when the expert fails."""
    try:
        return expert.host_action(spec), None
    except Exception as exc:  # execute accepted the spec; a faulty expert must not crash the router
        return None, f"{expert.name} has no host action for {spec[:120]!r}: {type(exc).__name__}: {str(exc)[:120]}"


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x)))))
