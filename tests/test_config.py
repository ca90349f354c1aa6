import sys
import types

import pytest
import yaml

from lazarus_cot_router import plugins
from lazarus_cot_router.config import ConfigError, describe_options, load_rewriter, read_config
from lazarus_cot_router.options import FewShotOptions, TrainedCoTOptions


class RecordingRewriter:
    def __init__(self, **options):
        self.options = options


@pytest.fixture(autouse=True)
def fake_rewriter_modules(monkeypatch):
    for name, cls in (("rewriter", "TrainedCoTRewriter"), ("few_shot", "FewShotCoTRewriter")):
        module = types.ModuleType(f"lazarus_cot_router.{name}")
        setattr(module, cls, type(cls, (RecordingRewriter,), {}))
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.delenv(plugins.LOAD_PLUGINS_ENV, raising=False)
    plugins.reset_plugins()
    yield
    plugins.reset_plugins()


@pytest.fixture
def experts():
    return list(plugins.get_experts())


def section(**values):
    return {"virtual_experts": values}


def test_trained_cot_from_file(tmp_path, experts):
    (tmp_path / "runs" / "latest").mkdir(parents=True)
    path = tmp_path / "lazarus.yaml"
    path.write_text(
        "virtual_experts:\n"
        "  rewriter: trained-cot\n"
        "  trained-cot: {model: embedded, adapter: runs/latest, max_tokens: 32, routing: text}\n"
        f"  experts: [{', '.join(experts[:3])}]\n"
    )
    rewriter = load_rewriter(path)
    assert type(rewriter).__name__ == "TrainedCoTRewriter"
    assert rewriter.options == {
        "model": "embedded",
        "adapter": str(tmp_path / "runs" / "latest"),
        "max_tokens": 32,
        "routing": "text",
        "experts": experts[:3],
    }


def test_few_shot_defaults_to_all_experts(experts):
    rewriter = load_rewriter(section(rewriter="few-shot", **{"few-shot": {"examples_per_expert": 2}}))
    assert type(rewriter).__name__ == "FewShotCoTRewriter"
    assert rewriter.options == {"examples_per_expert": 2, "experts": experts}


def test_read_config_builds_nothing(tmp_path):
    config = read_config(section(**{"trained-cot": {"adapter": str(tmp_path), "calibration": None}}))
    assert config.rewriter == "trained-cot"
    assert config.options == {"adapter": str(tmp_path), "calibration": None}
    assert "lazarus_cot_router.rewriter" in sys.modules
    assert config.experts == tuple(plugins.get_experts())


def test_other_sections_are_checked_but_unused():
    config = read_config(section(rewriter="few-shot", **{"trained-cot": {"max_tokens": 8}}))
    assert config.options == {}
    with pytest.raises(ConfigError, match=r"virtual_experts\.trained-cot\.max_tokens"):
        read_config(section(rewriter="few-shot", **{"trained-cot": {"max_tokens": "8"}}))


def test_plugin_rewriter_options_pass_through():
    class Plugin:
        @plugins.hookspecs.hookimpl
        def register_rewriters(self, register):
            register("echo", lambda **options: options)

    plugins.register_plugin(Plugin())
    built = load_rewriter(section(rewriter="echo", echo={"anything": [1, 2]}, experts=list(plugins.get_experts())[:1]))
    assert built == {"anything": [1, 2], "experts": list(plugins.get_experts())[:1]}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"rewriter": "magic"}, r"virtual_experts\.rewriter: unknown rewriter 'magic'; allowed: trained-cot, few-shot"),
        ({"rewriter": ["few-shot"]}, r"virtual_experts\.rewriter: unknown rewriter \['few-shot'\]; allowed: "),
        ({"rewriters": "few-shot"}, r"virtual_experts\.rewriters: unknown key; allowed: rewriter, experts, trained-cot, few-shot"),
        ({"experts": "multiply"}, r"virtual_experts\.experts: expected a non-empty list of expert names, got 'multiply' \(str\); allowed: "),
        ({"experts": []}, r"virtual_experts\.experts: expected a non-empty list"),
        ({"experts": ["telepathy"]}, r"virtual_experts\.experts\[0\]: unknown expert 'telepathy'; allowed: .*chat"),
        ({"experts": ["chat", 7]}, r"virtual_experts\.experts\[1\]: unknown expert 7"),
        ({"experts": ["chat", "chat"]}, r"virtual_experts\.experts\[1\]: expert 'chat' is listed twice"),
        ({"trained-cot": ["model"]}, r"virtual_experts\.trained-cot: expected a mapping of options, got a list"),
        ({"trained-cot": {"temperature": 0.1}}, r"virtual_experts\.trained-cot\.temperature: unknown option; allowed: model, adapter, max_tokens, routing, calibration"),
        ({"trained-cot": {"model": 3}}, r"virtual_experts\.trained-cot\.model: expected a non-empty string, got 3 \(int\)"),
        ({"trained-cot": {"model": ""}}, r"virtual_experts\.trained-cot\.model: expected a non-empty string"),
        ({"trained-cot": {"max_tokens": "ten"}}, r"virtual_experts\.trained-cot\.max_tokens: expected an integer, got 'ten' \(str\)"),
        ({"trained-cot": {"max_tokens": True}}, r"virtual_experts\.trained-cot\.max_tokens: expected an integer, got True"),
        ({"trained-cot": {"max_tokens": 0}}, r"virtual_experts\.trained-cot\.max_tokens: expected an integer >= 1, got 0"),
        ({"trained-cot": {"max_masked": 1.5}}, r"virtual_experts\.trained-cot\.max_masked: expected a number from 0\.0 to 1\.0, got 1\.5"),
        ({"trained-cot": {"max_masked": "most"}}, r"virtual_experts\.trained-cot\.max_masked: expected a number, got 'most' \(str\)"),
        ({"trained-cot": {"decoding": "strict"}}, r"virtual_experts\.trained-cot\.decoding: expected one of 'free', 'generic', 'full', got 'strict'"),
        ({"trained-cot": {"routing": "logits"}}, r"virtual_experts\.trained-cot\.routing: expected one of 'text', 'hidden', got 'logits'"),
        ({"trained-cot": {"adapter": "no/such/dir"}}, r"virtual_experts\.trained-cot\.adapter: 'no/such/dir' is not a folder"),
        ({"trained-cot": {"calibration": "no-such.npz"}}, r"virtual_experts\.trained-cot\.calibration: 'no-such.npz' does not exist"),
        ({"few-shot": {"examples_per_expert": 1.5}}, r"virtual_experts\.few-shot\.examples_per_expert: expected an integer, got 1\.5 \(float\)"),
        ({"few-shot": {"experts": ["chat"]}}, r"virtual_experts\.few-shot\.experts: the expert list belongs at virtual_experts\.experts"),
        ({"few-shot": {"adapter": "x"}}, r"virtual_experts\.few-shot\.adapter: unknown option; allowed: model, examples_per_expert, max_tokens"),
    ],
)
def test_invalid_section(values, message):
    with pytest.raises(ConfigError, match=message):
        load_rewriter(section(**values))
    assert "RecordingRewriter" not in repr(sys.modules.get("built"))


def test_a_share_option_takes_any_number_in_range():
    assert read_config(section(**{"trained-cot": {"max_masked": 1}})).options == {"max_masked": 1.0}
    assert read_config(section(**{"trained-cot": {"max_masked": 0.25}})).options == {"max_masked": 0.25}
    written = yaml.safe_load("max_masked: 5e-1")  # YAML 1.1: a string, "5e-1"
    assert read_config(section(**{"trained-cot": written})).options == {"max_masked": 0.5}


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], r"config: expected a mapping with key 'virtual_experts', got a list"),
        ({"experts": []}, r"config: missing key 'virtual_experts'"),
        ({"virtual_experts": "trained-cot"}, r"virtual_experts: expected a mapping, got 'trained-cot' \(str\)"),
    ],
)
def test_invalid_top_level(data, message):
    with pytest.raises(ConfigError, match=message):
        load_rewriter(data)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_rewriter(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_rewriter(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("virtual_experts:\n  rewriter: [trained-cot\n  experts: x\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: malformed YAML at line \d+, column \d+"):
        load_rewriter(broken)


def test_option_schemas_are_documented():
    rows = describe_options(TrainedCoTOptions)
    assert [row[0] for row in rows] == ["model", "adapter", "max_tokens", "routing", "calibration", "decoding", "resample",
                                   "max_masked"]
    assert rows[5][1:3] == ("'free' | 'generic' | 'full'", "generic")
    assert rows[6][1:3] == ("int", 8)
    assert rows[7][1] == "float"
    assert rows[1][1] == "str | null"
    assert rows[3][1] == "'text' | 'hidden'"
    assert all(row[3] for row in rows + describe_options(FewShotOptions))
    assert plugins.get_rewriter_factories()["few-shot"].options is FewShotOptions
