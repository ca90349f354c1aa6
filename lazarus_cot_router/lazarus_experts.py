"""This project's experts as Lazarus virtual experts.

Lazarus (chuk-lazarus 0.4.1) ships one virtual expert, ``math``. The router's
actions name ``math`` (the four arithmetic experts), ``word_problem``,
``schedule`` and ``time``, or ``none`` (chat: the base model answers).
:func:`register_lazarus_experts` puts a Lazarus ``VirtualExpert`` into a
Lazarus ``VirtualExpertRegistry`` for every action name the router's experts
write that the registry does not already serve, so that
``VirtualDenseWrapper.solve`` executes every action the router writes::

    from chuk_lazarus.inference.virtual_experts import VirtualDenseWrapper
    from lazarus_cot_router.lazarus_experts import register_lazarus_experts
    from lazarus_cot_router.rewriter import TrainedCoTRewriter

    router = TrainedCoTRewriter(model="embedded", adapter="runs/demo/run")
    registry = register_lazarus_experts(router)   # Lazarus's default registry
    wrapper = VirtualDenseWrapper(router.model, router.tokenizer, registry=registry, cot_rewriter=router)
    wrapper.solve("What time is it in Tokyo?").answer

Each Lazarus expert runs the project's own experts: it finds the expert and
spec behind an action (the routing line in ``action.reasoning`` first, then
each text parameter as a spec), keeps only a pair whose
``Expert.host_action(spec)`` is exactly the action it was given, and returns
``Expert.execute(spec)``. It never parses a spec itself. Its calibration data
(Lazarus gates each dispatch on a hidden-state score calibrated per expert)
are action JSONs of the experts' examples against those of the other experts:
a plugin's own :meth:`Expert.sample_example`, else the stored examples of a
built-in expert (:data:`CALIBRATION_FILE`, drawn once from its training
generator: ``python -m training.generators.lazarus_calibration`` writes it),
else the expert's few-shot examples.

``chuk_lazarus`` and ``chuk_virtual_expert`` are imported only when a function
here is called; the package imports without them.
"""

from __future__ import annotations

import functools
import random
from importlib import resources
from types import SimpleNamespace
from typing import Any, ClassVar, Iterable, Mapping

import yaml

from .experts.base import Expert, HostAction
from .grammar import RoutingLine, parse_line, render_line

#: The action name of a passthrough: Lazarus answers with the base model, no expert runs.
PASSTHROUGH_EXPERT = "none"
#: Examples in a Lazarus expert's calibration actions: per expert it runs (positives), and per
#: other expert (negatives). Lazarus runs the model over each one when it calibrates.
CALIBRATION_POSITIVES = 8
CALIBRATION_NEGATIVES = 3
#: The built-in experts' calibration examples, package data: ``{side: {expert: [{query, spec}]}}``
#: for the sides ``positive`` and ``negative``.
CALIBRATION_FILE = "data/lazarus_calibration.yaml"
PRIORITY = 5


def register_lazarus_experts(router: Any = None, registry: Any = None, *, experts: Iterable[str | Expert] | None = None,
                             clock: Any = None, replace: bool | Iterable[str] = ()) -> Any:
    """Register this project's experts into a Lazarus registry as Lazarus
    virtual experts and return the registry.

    ``router``: a :class:`~lazarus_cot_router.rewriter.TrainedCoTRewriter`
    (or anything with an ``experts`` mapping); its expert instances are used,
    so a clock given to the router is the time expert's clock here too.
    Without a router, ``experts`` names the experts (or gives instances;
    default: every registered expert, with ``clock``).

    ``registry``: a Lazarus ``VirtualExpertRegistry``, or a Lazarus wrapper
    (``VirtualDenseWrapper``, ``VirtualMoEWrapper``: registered through its
    ``register_plugin``, which rebuilds its router); ``None`` is Lazarus's
    default registry, the one a wrapper built without ``registry=`` uses.

    An action name the registry already serves keeps the registry's expert
    (Lazarus's ``math`` evaluates the arithmetic experts' expressions), unless
    ``replace`` is true or names it; an expert registered here before is
    always replaced. Chat writes passthrough actions and registers nothing."""
    target = _lazarus_registry_module().get_default_registry() if registry is None else registry
    table = target.registry if hasattr(target, "register_plugin") and hasattr(target, "registry") else target
    for plugin in lazarus_plugins(router, experts=experts, clock=clock):
        present = table.get(plugin.name)
        if present is not None:
            if not _is_ours(present) and not _replaces(replace, plugin.name):
                continue
            table.unregister(plugin.name)
        (target.register_plugin if table is not target else table.register)(plugin)
    return table


def lazarus_plugins(router: Any = None, *, experts: Iterable[str | Expert] | None = None, clock: Any = None) -> list:
    """One Lazarus ``VirtualExpert`` per action name the experts write (see
    :func:`register_lazarus_experts` for the arguments), not registered."""
    chosen = _experts(router, experts, clock)
    groups: dict[str, dict[str, Expert]] = {}
    for expert in chosen.values():
        for name in action_names(expert):
            if name != PASSTHROUGH_EXPERT:
                groups.setdefault(name, {})[expert.name] = expert
    return [_plugin_class(name, _describe(group))(group, chosen) for name, group in groups.items()]


def _describe(group: Mapping[str, Expert]) -> str:
    return "lazarus-cot-router " + "; ".join(f"{e.name}: {e.description}" for e in group.values())


def action_names(expert: Expert) -> list[str]:
    """The action (Lazarus expert) names ``expert``'s host actions use, read
    from its few-shot examples: ``math`` for ``multiply``, ``none`` for chat."""
    names = []
    for example in expert.few_shot_examples():
        name = expert.host_action(example.spec).expert
        if name not in names:
            names.append(name)
    return names


def calibration_pairs(expert: Expert, count: int, side: str) -> list[tuple[str, str]]:
    """``(query, spec)`` pairs of ``expert`` for one ``side`` (``positive``, ``negative``) of a
    Lazarus calibration: ``count`` of its own :meth:`Expert.sample_example` where its class
    implements it (a plugin's), else the stored ones of its name (:data:`CALIBRATION_FILE`),
    else its few-shot examples."""
    if type(expert).sample_example is not Expert.sample_example:
        rng = random.Random(f"lazarus-calibration:{side}:{expert.name}")
        return [(e.query, e.spec) for e in (expert.sample_example(rng, "train") for _ in range(count))]
    stored = stored_calibration().get(side, {}).get(expert.name)
    if stored:
        return [(entry["query"], entry["spec"]) for entry in stored[:count]]
    return [(e.query, e.spec) for e in expert.few_shot_examples()]


@functools.cache
def stored_calibration() -> dict[str, dict[str, list[dict[str, str]]]]:
    """:data:`CALIBRATION_FILE`, read once."""
    return yaml.safe_load(resources.files(__package__).joinpath(CALIBRATION_FILE).read_text(encoding="utf-8"))


def _experts(router: Any, experts: Iterable[str | Expert] | None, clock: Any) -> dict[str, Expert]:
    if router is not None:
        if experts is not None:
            raise ValueError("give a router or experts, not both")
        routed = getattr(router, "experts", None)
        if not isinstance(routed, Mapping):
            raise TypeError(f"{type(router).__name__} has no 'experts' mapping; pass a TrainedCoTRewriter")
        return dict(routed)
    from .plugins import get_experts

    registered = get_experts(clock)
    if experts is None:
        return registered
    chosen: dict[str, Expert] = {}
    for item in experts:
        if isinstance(item, Expert):
            chosen[item.name] = item
        elif item in registered:
            chosen[item] = registered[item]
        else:
            raise ValueError(f"unknown expert {item!r}; registered: {', '.join(registered)}")
    return chosen


def _is_ours(plugin: Any) -> bool:
    return isinstance(plugin, _plugin_base())


def _replaces(replace: bool | Iterable[str], name: str) -> bool:
    return replace is True or (not isinstance(replace, bool) and name in set(replace))


@functools.cache
def _plugin_class(name: str, description: str) -> type:
    # Lazarus reads ``name`` and ``description`` from the class (pydantic class variables).
    return type(f"RouterExpert[{name}]", (_plugin_base(),), {"name": name, "description": description,
                                                              "__module__": __name__})


def _lazarus_registry_module():
    try:
        import chuk_lazarus.inference.virtual_experts.registry as registry
    except ImportError as error:
        raise ImportError(f"Lazarus is not importable ({error}): pip install 'lazarus-cot-router[lazarus]' and "
                          "chuk-virtual-expert (docs/lazarus.md)") from error
    return registry


@functools.cache
def _plugin_base() -> type:
    _lazarus_registry_module()
    import chuk_virtual_expert as cve

    class RouterExpert(cve.VirtualExpert):
        """A Lazarus virtual expert that runs this project's experts for one
        action name (:func:`register_lazarus_experts`)."""

        name: ClassVar[str] = "lazarus-cot-router"
        description: ClassVar[str] = "lazarus-cot-router experts"
        priority: ClassVar[int] = PRIORITY

        _group: dict = {}
        _everyone: dict = {}

        def __init__(self, group: Mapping[str, Expert], everyone: Mapping[str, Expert], **data: Any):
            super().__init__(**data)
            self._group, self._everyone = dict(group), dict(everyone)

        @property
        def experts(self) -> dict[str, Expert]:
            """The project's experts this Lazarus expert runs, by name."""
            return dict(self._group)

        # -- what Lazarus calls ------------------------------------------------
        def can_handle(self, prompt: str) -> bool:
            """False: these experts take the router's actions, never a raw prompt."""
            return False

        def get_operations(self) -> list[str]:
            return sorted({host.operation for host, _, _ in self._examples(self._group)})

        async def execute_operation(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
            return self.run(operation, parameters)

        async def execute(self, action: Any) -> Any:
            """Run ``action``, using the routing line in its ``reasoning``."""
            try:
                data = self.run(action.operation, action.parameters, getattr(action, "reasoning", ""))
            except Exception as error:
                return cve.VirtualExpertResult(data=None, expert_name=self.name, success=False,
                                               error=str(getattr(error, "reason", error)), action=action)
            return cve.VirtualExpertResult(data=data, expert_name=self.name, success=True, action=action)

        def get_cot_examples(self) -> Any:
            examples = [(query, self._action(host, 1.0, line)) for host, query, line in self._examples(self._group)]
            if hasattr(cve, "CoTExamples"):
                return cve.CoTExamples(expert_name=self.name, examples=[
                    cve.CoTExample(query=query, action=action) for query, action in examples])
            return SimpleNamespace(expert_name=self.name, examples=[SimpleNamespace(query=q, action=a) for q, a in examples])

        def get_calibration_actions(self) -> tuple[list[str], list[str]]:
            positive, negative = self._calibration()
            return [json for json, _ in positive], [json for json, _ in negative]

        def get_calibration_data(self) -> tuple[list[str], list[str]]:
            return self.get_calibration_actions()

        def get_calibration_prompts(self) -> tuple[list[str], list[str]]:
            positive, negative = self._calibration()
            return [query for _, query in positive], [query for _, query in negative]

        # -- running an action ---------------------------------------------------
        def run(self, operation: str, parameters: Mapping[str, Any], reasoning: str = "") -> dict[str, Any]:
            """The result data of an action: ``result`` and ``formatted`` (what
            ``VirtualDenseWrapper.solve`` answers), ``expert``, ``spec`` and
            ``routing_line`` (the line as executed now)."""
            expert, spec = self.resolve(operation, parameters, reasoning)
            result = expert.execute(spec)
            return {"result": result, "formatted": result, "expert": expert.name, "spec": spec,
                    "routing_line": render_line(expert.name, spec, result)}

        def resolve(self, operation: str, parameters: Mapping[str, Any], reasoning: str = "") -> tuple[Expert, str]:
            """The expert and spec whose host action is exactly this action."""
            wanted = HostAction(self.name, operation, dict(parameters or {}))
            for expert, spec in self._candidates(parameters or {}, reasoning):
                try:
                    host = expert.host_action(spec)
                except Exception:
                    continue
                if host == wanted:
                    return expert, spec
            raise ValueError(f"none of the experts {list(self._group)} writes the action "
                             f"{self.name}.{operation}({dict(parameters or {})})")

        def _candidates(self, parameters: Mapping[str, Any], reasoning: str):
            line = parse_line(reasoning) if reasoning else None
            if isinstance(line, RoutingLine) and line.expert in self._group:
                yield self._group[line.expert], line.spec
            for value in parameters.values():
                if isinstance(value, str):
                    for expert in self._group.values():
                        yield expert, value

        # -- examples and calibration -------------------------------------------
        @staticmethod
        def _action(host: HostAction, confidence: float, reasoning: str) -> Any:
            return cve.VirtualExpertAction(expert=host.expert, operation=host.operation,
                                           parameters=dict(host.parameters), confidence=confidence, reasoning=reasoning)

        @staticmethod
        def _examples(experts: Mapping[str, Expert], per_expert: int | None = None, side: str = ""):
            """``(host action, query, routing line)`` of each expert's few-shot examples
            (``per_expert`` None), or of its calibration examples for ``side``
            (:func:`calibration_pairs`)."""
            for expert in experts.values():
                pairs = ([(e.query, e.spec) for e in expert.few_shot_examples()] if per_expert is None
                         else calibration_pairs(expert, per_expert, side))
                for query, spec in pairs:
                    try:
                        host = expert.host_action(spec)
                        line = render_line(expert.name, spec, expert.execute(spec))
                    except Exception:
                        continue
                    yield host, query, line

        def _calibration(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
            """``(action JSON, query)`` pairs: this expert's, then the other experts'."""
            rng = random.Random(f"lazarus-calibration:{self.name}")
            others = {n: e for n, e in self._everyone.items() if n not in self._group}
            sides = []
            for experts, side, count in ((self._group, "positive", CALIBRATION_POSITIVES),
                                         (others, "negative", CALIBRATION_NEGATIVES)):
                pairs = []
                for host, query, line in self._examples(experts, count, side):
                    confidence = rng.uniform(0.5, 1.0)
                    pairs.append((self._action(host, confidence, line).model_dump_json(), query))
                sides.append(pairs)
            return sides[0], sides[1]

    return RouterExpert
