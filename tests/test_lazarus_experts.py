"""lazarus_cot_router.lazarus_experts against the real chuk-lazarus: the router
is a Lazarus rewriter, its experts register into a Lazarus registry as Lazarus
virtual experts and execute exactly the actions the router writes.

Skipped where chuk-lazarus cannot be imported (the main venv: it pins
huggingface-hub < 0.24); ``scripts/test-lazarus.sh`` runs them with
LAZARUS_COT_ROUTER_REQUIRE_LAZARUS=1, which turns the skip into a failure."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from conftest import fixed_clock, import_lazarus_or_skip


ve = import_lazarus_or_skip()
import chuk_virtual_expert as cve  # noqa: E402

from lazarus_cot_router import actions  # noqa: E402
from lazarus_cot_router.experts.base import HostAction  # noqa: E402
from lazarus_cot_router.experts.time import TimeExpert  # noqa: E402
from lazarus_cot_router.grammar import render_line  # noqa: E402
from lazarus_cot_router.lazarus_experts import action_names, lazarus_plugins, register_lazarus_experts  # noqa: E402
from lazarus_cot_router.plugins import get_experts  # noqa: E402
from lazarus_cot_router.rewriter import TrainedCoTRewriter  # noqa: E402
from training.generators import sample_example  # noqa: E402

CLOCK = fixed_clock
ROUTED = {"math": ["multiply", "add", "subtract", "divide"], "word_problem": ["word_problem"],
          "schedule": ["schedule"], "time": ["time"]}


@pytest.fixture
def experts():
    return get_experts(clock=CLOCK)


def lazarus_registry():
    """A registry as Lazarus's default one starts: its math expert only."""
    registry = ve.VirtualExpertRegistry()
    registry.register(ve.MathExpert())
    return registry


def run(plugin, action):
    return asyncio.run(plugin.execute(action))


def action_for(expert, spec, reasoning=None):
    host = expert.host_action(spec)
    line = render_line(expert.name, spec, expert.execute(spec)) if reasoning is None else reasoning
    return cve.VirtualExpertAction(expert=host.expert, operation=host.operation, parameters=dict(host.parameters),
                                   confidence=0.9, reasoning=line)


def test_the_router_is_a_lazarus_rewriter_and_writes_lazarus_actions():
    assert issubclass(TrainedCoTRewriter, ve.CoTRewriter)
    assert actions.host_action_class() is ve.VirtualExpertAction is cve.VirtualExpertAction
    action = actions.make_action(HostAction("time", "get_time", {"timezone": "Asia/Tokyo"}), 0.8, "time: Tokyo -> 21:00 JST")
    assert type(action) is ve.VirtualExpertAction and not action.is_passthrough()
    assert json.loads(action.model_dump_json())["reasoning"] == "time: Tokyo -> 21:00 JST"
    assert actions.passthrough_action("chat: -> [response]").is_passthrough()


def test_action_names_group_the_experts(experts):
    assert {name: action_names(expert) for name, expert in experts.items()} == {
        "multiply": ["math"], "add": ["math"], "subtract": ["math"], "divide": ["math"],
        "word_problem": ["word_problem"], "schedule": ["schedule"], "time": ["time"], "chat": ["none"]}


def test_registers_an_expert_for_every_action_name_lazarus_lacks(experts):
    registry = lazarus_registry()
    lazarus_math = registry.get("math")
    assert register_lazarus_experts(registry=registry, experts=list(experts.values())) is registry
    assert sorted(registry.plugin_names) == ["math", "schedule", "time", "word_problem"]
    assert registry.get("math") is lazarus_math  # Lazarus's own math stays
    for name in ("word_problem", "schedule", "time"):
        plugin = registry.get(name)
        assert isinstance(plugin, ve.VirtualExpert) and plugin.name == name
        assert list(plugin.experts) == ROUTED[name] and plugin.description.startswith("lazarus-cot-router")
        assert not plugin.can_handle("What time is it in Tokyo?")  # reached through actions only
    first = registry.get("time")
    register_lazarus_experts(registry=registry, experts=list(experts.values()))  # repeatable: replaces its own
    assert registry.get("time") is not first and len(registry) == 4

    register_lazarus_experts(registry=registry, experts=list(experts.values()), replace=["math"])
    assert registry.get("math") is not lazarus_math and list(registry.get("math").experts) == ROUTED["math"]
    fresh = ve.VirtualExpertRegistry()
    register_lazarus_experts(registry=fresh, experts=["multiply", "time", "chat"])
    assert sorted(fresh.plugin_names) == ["math", "time"]  # nothing served "math": the router's own


def test_the_default_registry_is_lazaruss(experts):
    from chuk_lazarus.inference.virtual_experts.registry import get_default_registry, reset_default_registry

    reset_default_registry()
    try:
        registry = register_lazarus_experts(experts=["time", "schedule"], clock=CLOCK)
        assert registry is get_default_registry()
        assert {"math", "time", "schedule"} <= set(registry.plugin_names)
        assert registry.get("time").experts["time"].execute("Tokyo") == "21:00 JST"  # the clock given
    finally:
        reset_default_registry()


def test_the_routers_experts_and_clock_are_used():
    class Router:  # what register_lazarus_experts reads of a TrainedCoTRewriter
        experts = {"time": TimeExpert(CLOCK), "chat": get_experts()["chat"]}

    (plugin,) = lazarus_plugins(Router())
    assert plugin.name == "time" and plugin.experts["time"] is Router.experts["time"]
    result = run(plugin, cve.VirtualExpertAction(expert="time", operation="get_time",
                                                 parameters={"timezone": "Europe/London"}, reasoning="time: London ->"))
    assert result.success and result.data["formatted"] == "12:00 GMT"
    with pytest.raises(ValueError, match="not both"):
        lazarus_plugins(Router(), experts=["time"])


def _examples(expert, count=4, seed=0):
    rng = random.Random(seed)
    return [ex for ex in expert.few_shot_examples() + [sample_example(expert, rng, "train") for _ in range(count)]]


@pytest.mark.parametrize("name", ["multiply", "add", "subtract", "divide", "word_problem", "schedule", "time"])
def test_each_expert_executes_the_actions_it_writes(experts, name):
    registry = register_lazarus_experts(registry=ve.VirtualExpertRegistry(), experts=list(experts.values()))
    expert = experts[name]
    for example in _examples(expert):
        action = action_for(expert, example.spec)
        plugin = registry.get(action.expert)
        want = expert.execute(example.spec)
        for given in (action, action.model_copy(update={"reasoning": ""})):  # with and without the routing line
            result = run(plugin, given)
            assert result.success, result.error
            assert result.expert_name == action.expert and result.action is given
            assert result.data["formatted"] == result.data["result"] == want
            assert result.data["expert"] == name
            assert result.data["routing_line"] == render_line(name, result.data["spec"], want)


def test_an_action_runs_as_its_parameters_say(experts):
    """A routing line that does not match the action is not what runs."""
    (plugin,) = lazarus_plugins(experts=[experts["time"]])
    action = cve.VirtualExpertAction(expert="time", operation="get_time", parameters={"timezone": "Asia/Tokyo"},
                                     reasoning="time: Paris -> 13:00 CET")
    result = run(plugin, action)
    assert result.success and result.data["formatted"] == "21:00 JST" and result.data["spec"] == "Asia/Tokyo"


@pytest.mark.parametrize("name, operation, parameters, error", [
    ("time", "get_time", {"timezone": "Mars/Olympus_Mons"}, "writes the action"),
    ("time", "convert_time", {"timezone": "Asia/Tokyo"}, "writes the action"),
    ("word_problem", "execute", {"spec": "not a word problem"}, "writes the action"),
    ("math", "evaluate", {"expression": "7 / 0"}, "division by zero"),
])
def test_actions_that_do_not_execute_fail_with_a_reason(experts, name, operation, parameters, error):
    registry = register_lazarus_experts(registry=ve.VirtualExpertRegistry(), experts=list(experts.values()))
    result = run(registry.get(name), cve.VirtualExpertAction(expert=name, operation=operation, parameters=parameters))
    assert not result.success and result.data is None and error in result.error


def test_calibration_and_examples_are_lazarus_actions(experts):
    registry = register_lazarus_experts(registry=ve.VirtualExpertRegistry(), experts=list(experts.values()))
    for name in ("math", "word_problem", "schedule", "time"):
        plugin = registry.get(name)
        positive, negative = plugin.get_calibration_actions()
        assert positive and negative and plugin.get_calibration_data() == (positive, negative)
        assert {json.loads(a)["expert"] for a in positive} == {name}
        others = {json.loads(a)["expert"] for a in negative}
        assert name not in others and "none" in others  # other experts' actions and chat's passthroughs
        for text in positive:  # each is what the router writes: the line's expert executes to its parameters
            action = cve.VirtualExpertAction(**json.loads(text))
            assert action.reasoning.split(":")[0] in ROUTED[name] and run(plugin, action).success
        queries = plugin.get_calibration_prompts()
        assert [len(side) for side in queries] == [len(positive), len(negative)]
        examples = plugin.get_cot_examples().examples
        assert examples and all(ex.action.expert == name and ex.query for ex in examples)
    assert registry.get("time").get_operations() == ["get_time"]
    assert registry.get("math").get_operations() == ["evaluate"]


def test_registering_through_a_wrapper_resizes_its_router(tiny_model_dir, experts):
    from lazarus_cot_router.models import load

    model, tokenizer = load(str(tiny_model_dir))
    wrapper = ve.VirtualDenseWrapper(model, tokenizer, registry=lazarus_registry())
    assert wrapper.router.num_virtual_experts == 1
    registry = register_lazarus_experts(registry=wrapper, experts=list(experts.values()))
    assert registry is wrapper.registry and len(registry) == 4
    assert wrapper.router.num_virtual_experts == 4
