import random
import sys
from datetime import datetime, timezone

import pytest

from lazarus_cot_router import plugins
from lazarus_cot_router.experts.arithmetic import MultiplyExpert
from lazarus_cot_router.experts.base import Example, Expert, HostAction
from lazarus_cot_router.experts.builtin import default_experts
from lazarus_cot_router.hookspecs import hookimpl
from lazarus_cot_router.lazarus_experts import calibration_pairs, stored_calibration
from training.data import generate_split
from training.generators import pool_ids, sample_example

PLUGIN_SOURCE = '''
from lazarus_cot_router.experts.base import Example, Expert, HostAction
from lazarus_cot_router.hookspecs import hookimpl


class PluginExpert(Expert):
    name = {expert!r}
    description = "echo the spec"

    def execute(self, spec):
        return spec

    def host_action(self, spec):
        return HostAction(self.name, "execute", {{"spec": spec}})

    def sample_example(self, rng, split):
        word = rng.choice(["alpha", "beta"])
        return Example(f"echo {{word}}", self.name, word, word)


@hookimpl
def register_experts(register):
    register(PluginExpert())


@hookimpl
def register_rewriters(register):
    register({rewriter!r}, lambda **options: ("built", options))
'''


class EchoExpert(Expert):
    name = "echo"
    description = "echo the spec"

    def execute(self, spec):
        return spec

    def host_action(self, spec):
        return HostAction("echo", "execute", {"spec": spec})

    def sample_example(self, rng, split):
        return Example("echo hi", "echo", "hi", "hi")


class EchoPlugin:
    def __init__(self, name="echo"):
        self.expert_name = name

    @hookimpl
    def register_experts(self, register):
        expert = EchoExpert()
        expert.name = self.expert_name
        register(expert)


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.delenv(plugins.LOAD_PLUGINS_ENV, raising=False)
    plugins.reset_plugins()
    yield
    plugins.reset_plugins()


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Write a plugin package with a dist-info entry point onto sys.path."""
    created = []

    def install(module, expert, rewriter="echo-rewriter", distribution=None):
        distribution = distribution or module.replace("_", "-")
        root = tmp_path / module
        (root / module).mkdir(parents=True)
        (root / module / "__init__.py").write_text(PLUGIN_SOURCE.format(expert=expert, rewriter=rewriter))
        info = root / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[lazarus_cot_router]\n{module} = {module}\n")
        monkeypatch.syspath_prepend(str(root))
        created.append(module)
        plugins.reset_plugins()
        return distribution

    yield install
    for module in created:
        sys.modules.pop(module, None)


def test_builtin_experts_in_default_order():
    names = [expert.name for expert in default_experts()]
    assert list(plugins.get_experts())[: len(names)] == names
    assert plugins.get_expert(names[0]).name == names[0]


def test_builtin_rewriters_registered_lazily(monkeypatch):
    for module in ("lazarus_cot_router.rewriter", "lazarus_cot_router.few_shot"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    factories = plugins.get_rewriter_factories()
    assert list(factories)[:2] == ["trained-cot", "few-shot"]
    assert "lazarus_cot_router.rewriter" not in sys.modules
    assert "lazarus_cot_router.few_shot" not in sys.modules


def test_unknown_names_are_lookup_errors():
    with pytest.raises(LookupError, match="unknown expert 'nope'; registered: .*chat"):
        plugins.get_expert("nope")
    with pytest.raises(plugins.UnknownNameError, match="unknown rewriter 'nope'; registered: trained-cot"):
        plugins.get_rewriter("nope")


def test_clock_reaches_builtin_experts():
    seen = []

    class ClockPlugin:
        @hookimpl
        def register_experts(self, register, clock):
            seen.append(clock)

    plugins.register_plugin(ClockPlugin())
    clock = object()
    plugins.get_experts(clock=clock)
    plugins.get_experts()
    assert seen == [clock, None]


def test_clock_reaches_time_expert():
    fixed = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert plugins.get_experts(clock=lambda: fixed)["time"].execute("Asia/Tokyo") == "21:00 JST"


def test_registered_plugin_adds_expert_after_builtins():
    plugins.register_plugin(EchoPlugin(), name="echo-plugin")
    names = list(plugins.get_experts())
    assert names[-1] == "echo"
    assert names[0] == default_experts()[0].name
    plugins.unregister_plugin("echo-plugin")
    assert "echo" not in plugins.get_experts()


def test_duplicate_expert_names_both_plugins():
    plugins.register_plugin(EchoPlugin(), name="first-plugin")
    plugins.register_plugin(EchoPlugin(), name="second-plugin")
    with pytest.raises(plugins.PluginError, match="'echo' is registered by both plugin 'first-plugin' and plugin 'second-plugin'"):
        plugins.get_experts()


def test_invalid_registrations_rejected():
    plugins.register_plugin(EchoPlugin(name="Bad Name"), name="bad")
    with pytest.raises(plugins.PluginError, match="invalid name 'Bad Name'"):
        plugins.get_experts()
    plugins.unregister_plugin("bad")

    class NotAnExpert:
        @hookimpl
        def register_experts(self, register):
            register("multiply")

    plugins.register_plugin(NotAnExpert(), name="strings")
    with pytest.raises(plugins.PluginError, match="plugin 'strings' registered 'multiply', which is not an Expert"):
        plugins.get_experts()


def test_entry_point_plugin_is_loaded(install_plugin):
    install_plugin("lcr_echo_plugin", "shout")
    experts = plugins.get_experts()
    assert list(experts)[-1] == "shout"
    assert experts["shout"].execute("hi") == "hi"
    assert plugins.get_rewriter("echo-rewriter", model="m") == ("built", {"model": "m"})


def test_entry_point_duplicate_names_distribution(install_plugin):
    builtin_name = default_experts()[0].name
    install_plugin("lcr_clash_plugin", builtin_name, rewriter="few-shot")
    with pytest.raises(plugins.PluginError) as error:
        plugins.get_experts()
    message = str(error.value)
    assert f"expert {builtin_name!r} is registered by both plugin 'lazarus_cot_router.builtin_plugins'" in message
    assert "'lcr_clash_plugin' (from lcr-clash-plugin 0.1)" in message
    with pytest.raises(plugins.PluginError, match="rewriter 'few-shot' is registered by both"):
        plugins.get_rewriter_factories()


def test_load_plugins_env_selects_distributions(install_plugin, monkeypatch):
    distribution = install_plugin("lcr_env_plugin", "envecho")
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    plugins.reset_plugins()
    assert "envecho" not in plugins.get_experts()

    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, f" {distribution} ,")
    plugins.reset_plugins()
    assert "envecho" in plugins.get_experts()

    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "no-such-distribution-xyz")
    plugins.reset_plugins()
    with pytest.raises(plugins.PluginError, match="'no-such-distribution-xyz', which is not installed"):
        plugins.get_plugin_manager()


def test_get_experts_returns_copies():
    experts = plugins.get_experts()
    experts.clear()
    assert plugins.get_experts()



class BareExpert(Expert):
    """A plugin expert that offers no training examples, only few-shot ones."""

    name = "bare"
    description = "echo the spec"
    few_shot_specs = (("say hi", "hi"),)

    def execute(self, spec):
        return spec

    def host_action(self, spec):
        return HostAction("bare", "execute", {"spec": spec})


def test_a_plugin_expert_offers_training_examples_itself():
    echo = EchoExpert()
    assert sample_example(echo, random.Random(0), "train") == Example("echo hi", "echo", "hi", "hi")
    assert pool_ids(echo, "train") == {}
    assert {e.expert for e in generate_split("train", 3, experts=[echo, MultiplyExpert()])} == {"echo", "multiply"}
    with pytest.raises(NotImplementedError):
        sample_example(BareExpert(), random.Random(0), "train")


def test_built_in_generators_go_by_class():
    class Product(MultiplyExpert):
        name = "product"

    class Own(MultiplyExpert):
        def sample_example(self, rng, split):
            return Example("own", self.name, "1 * 1", "1")

    builtin = sample_example(MultiplyExpert(), random.Random(3), "heldout")
    derived = sample_example(Product(), random.Random(3), "heldout")
    assert (derived.expert, derived.query, derived.spec) == ("product", builtin.query, builtin.spec)
    assert pool_ids(Product(), "train") == pool_ids(MultiplyExpert(), "train")
    assert sample_example(Own(), random.Random(3), "train").query == "own"


def test_lazarus_calibration_examples_of_plugins_and_built_in_experts():
    stored = stored_calibration()["positive"]["multiply"]
    assert calibration_pairs(MultiplyExpert(), 2, "positive") == [(e["query"], e["spec"]) for e in stored[:2]]
    assert calibration_pairs(EchoExpert(), 2, "negative") == [("echo hi", "hi")] * 2
    assert calibration_pairs(BareExpert(), 2, "positive") == [("say hi", "hi")]
