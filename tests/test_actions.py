import json
import sys
import types
from dataclasses import dataclass, field

import pytest

from lazarus_cot_router import actions
from lazarus_cot_router.actions import CoTRewriterBase, VirtualExpertAction
from lazarus_cot_router.experts.base import HostAction

HOST_REWRITER_MODULES = (
    "chuk_lazarus",
    "chuk_lazarus.inference",
    "chuk_lazarus.inference.virtual_experts",
    "chuk_lazarus.inference.virtual_experts.cot_rewriter",
)


@pytest.fixture
def without_host(monkeypatch):
    monkeypatch.setitem(sys.modules, "chuk_virtual_expert", None)
    for name in HOST_REWRITER_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


def install_host_action(monkeypatch, action_class):
    module = types.ModuleType("chuk_virtual_expert")
    module.VirtualExpertAction = action_class
    monkeypatch.setitem(sys.modules, "chuk_virtual_expert", module)


def install_host_rewriter(monkeypatch, base_class):
    for name in HOST_REWRITER_MODULES:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules[HOST_REWRITER_MODULES[-1]].CoTRewriter = base_class


@dataclass
class HostDataclassAction:
    expert: str
    operation: str
    parameters: dict = field(default_factory=dict)
    confidence: float = 1.0
    reasoning: str = ""


def test_local_action_fields_and_dumps():
    action = VirtualExpertAction("math", "evaluate", {"expression": "256 * 4"}, 0.9, "multiply: 256 * 4 -> 1024")
    dumped = action.model_dump()
    assert dumped == {
        "expert": "math",
        "operation": "evaluate",
        "parameters": {"expression": "256 * 4"},
        "confidence": 0.9,
        "reasoning": "multiply: 256 * 4 -> 1024",
    }
    assert json.loads(action.model_dump_json()) == dumped
    assert VirtualExpertAction.from_json(action.to_json()) == action
    assert not action.is_passthrough()


def test_local_none_action_is_passthrough():
    action = VirtualExpertAction.none_action("chat: -> [response]")
    assert (action.expert, action.operation, action.parameters, action.confidence) == ("none", "passthrough", {}, 1.0)
    assert action.is_passthrough()
    assert VirtualExpertAction("time", "passthrough").is_passthrough()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"confidence": 1.5}, ValueError),
        ({"confidence": -0.1}, ValueError),
        ({"confidence": float("nan")}, ValueError),
        ({"confidence": True}, TypeError),
        ({"confidence": "high"}, TypeError),
        ({"parameters": ["x"]}, TypeError),
        ({"expert": 3}, TypeError),
        ({"reasoning": None}, TypeError),
    ],
)
def test_local_action_validation(kwargs, error):
    base = {"expert": "math", "operation": "evaluate"}
    with pytest.raises(error):
        VirtualExpertAction(**{**base, **kwargs})


def test_fallbacks_without_host(without_host):
    assert actions.host_action_class() is VirtualExpertAction
    assert actions.host_rewriter_base() is CoTRewriterBase
    action = actions.make_action(HostAction("time", "get_time", {"timezone": "Asia/Tokyo"}), 1.7, "time: Tokyo ->")
    assert isinstance(action, VirtualExpertAction)
    assert action.confidence == 1.0
    assert action.parameters == {"timezone": "Asia/Tokyo"}


def test_make_action_copies_parameters(without_host):
    host = HostAction("word_problem", "execute", {"spec": "eggs:16 | -3"})
    action = actions.make_action(host, 0.5, "")
    action.parameters["spec"] = "changed"
    assert host.parameters == {"spec": "eggs:16 | -3"}


@pytest.mark.parametrize("value, clamped", [(-2, 0.0), (0.25, 0.25), (3, 1.0), (float("nan"), 0.0), (float("inf"), 1.0)])
def test_clamp_confidence(value, clamped):
    assert actions.clamp_confidence(value) == clamped


def test_passthrough_action(without_host):
    action = actions.passthrough_action("no '->' after the spec", confidence=0.2)
    assert action.is_passthrough()
    assert (action.expert, action.operation, action.parameters) == ("none", "passthrough", {})
    assert action.confidence == 0.2
    assert action.reasoning == "no '->' after the spec"


def test_host_dataclass_action_is_used(monkeypatch):
    install_host_action(monkeypatch, HostDataclassAction)
    assert actions.host_action_class() is HostDataclassAction
    action = actions.make_action(HostAction("math", "evaluate", {"expression": "1 + 2"}), 0.8, "add: 1 + 2 -> 3")
    assert type(action) is HostDataclassAction
    assert action.parameters == {"expression": "1 + 2"}
    assert actions.passthrough_action("why").expert == "none"


def test_host_pydantic_action_is_used(monkeypatch):
    pydantic = pytest.importorskip("pydantic")

    class HostPydanticAction(pydantic.BaseModel):
        expert: str
        operation: str
        parameters: dict = pydantic.Field(default_factory=dict)
        confidence: float = pydantic.Field(default=1.0, ge=0.0, le=1.0)
        reasoning: str = ""

        def is_passthrough(self):
            return self.expert == "none" or self.operation == "passthrough"

    install_host_action(monkeypatch, HostPydanticAction)
    action = actions.make_action(HostAction("time", "get_time", {"timezone": "Europe/London"}), 1.3, "r")
    assert type(action) is HostPydanticAction
    assert action.confidence == 1.0
    assert action.model_dump()["parameters"] == {"timezone": "Europe/London"}
    assert actions.passthrough_action("r", confidence=-1).is_passthrough()


def test_host_rewriter_base_is_used(monkeypatch):
    class HostCoTRewriter:
        def rewrite(self, query, available_experts):
            raise NotImplementedError

    install_host_rewriter(monkeypatch, HostCoTRewriter)
    assert actions.host_rewriter_base() is HostCoTRewriter


def test_local_rewriter_base_interface():
    with pytest.raises(TypeError):
        CoTRewriterBase()

    class Upper(CoTRewriterBase):
        def rewrite(self, query, available_experts):
            return VirtualExpertAction("echo", "execute", {"text": query.upper()}, reasoning=",".join(available_experts))

    rewriter = Upper()
    results = rewriter.rewrite_batch(["a", "b"], ["echo"])
    assert [r.parameters["text"] for r in results] == ["A", "B"]
    assert results[0].reasoning == "echo"
    rewriter.set_expert_info("echo", "echoes", [{"query": "a", "action": {}}])
    assert rewriter.expert_info == {"echo": {"description": "echoes", "examples": [{"query": "a", "action": {}}]}}
