"""End to end inside the real Lazarus: a small adapter trained here with the
project's own training code (SFT on the embedded model, about 3.5 minutes on
two cores), the trained router as the ``cot_rewriter`` of Lazarus's
``VirtualDenseWrapper``, and ``solve()`` for one query per expert: the plugin
Lazarus dispatched to and its answer; a chat query comes back as a
passthrough. Also runs the "Enabling it in Lazarus" snippets of
docs/lazarus.md and the README.

Skipped where chuk-lazarus cannot be imported (the main venv);
``scripts/test-lazarus.sh`` runs it with LAZARUS_COT_ROUTER_REQUIRE_LAZARUS=1."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from conftest import ROOT, fixed_clock, import_lazarus_or_skip


ve = import_lazarus_or_skip()
from chuk_lazarus.inference.virtual_experts.base import VirtualExpertApproach  # noqa: E402

from lazarus_cot_router.lazarus_experts import register_lazarus_experts  # noqa: E402
from lazarus_cot_router.rewriter import TrainedCoTRewriter  # noqa: E402

CLOCK = fixed_clock
#: The smallest recipe found that routes every query below right on each of seeds 0, 1 and 2: SFT
#: only, 400 examples at twice the default learning rate (about 3.5 minutes on two cores). With
#: 240 or 320 examples the adapter still picks the wrong arithmetic expert for some seeds
#: ("What is 12 * 5?" as divide or chat). RL and the held-out evaluation are left out. Every loss
#: token weighs alike, as when the recipe was found: with the operators weighted 3 (the default)
#: this recipe wrote "+5" for "gives away 5" on seed 0. Adam runs without its bias correction, as
#: then too: the correction makes the early steps several times smaller at the same rate.
RECIPE = {"examples": 400, "mawps_examples": 0, "clinc_examples": 0, "unsupported_examples": 0, "batch_size": 4, "learning_rate": 1e-3, "num_layers": 10, "rl_iters": 0, "eval_examples": 0,
          "checkpoint_every": 0, "seed": 0, "operator_weight": 1.0, "adam_bias_correction": False}

# query, the routing line, the plugin Lazarus dispatches to, its answer
ROUTED = [
    ("What is 12 * 5?", "multiply: 12 * 5 -> 60", "math", "60"),
    ("What is 17 + 25?", "add: 17 + 25 -> 42", "math", "42"),
    ("What is 50 - 17?", "subtract: 50 - 17 -> 33", "math", "33"),
    ("What is 72 / 9?", "divide: 72 / 9 -> 8", "math", "8"),
    ("Tom has 20 apples and gives away 5. How many apples does he have now?",
     "word_problem: apples:20 | -5 -> 15", "word_problem", "15"),
    ("Schedule Alice (2hr) and Bob (1hr), no overlap",
     "schedule: Alice:2hr,Bob:1hr | no_overlap -> Alice:9-11,Bob:11-12", "schedule", "Alice:9-11,Bob:11-12"),
    ("What time is it in London?", "time: London -> 12:00 GMT", "time", "12:00 GMT"),
    ("What is 12 * 5? answer in french", "multiply: 12 * 5 -> 60", "math", "60"),
]
CHAT = "Tell me a joke"


@pytest.fixture(scope="session")
def adapter(tmp_path_factory, embedded_dir):
    from training import train
    from training.config import TrainConfig

    out = tmp_path_factory.mktemp("lazarus-e2e") / "run"
    train.run(TrainConfig(model="embedded", out=str(out), **RECIPE), progress=False)
    return out


@pytest.fixture(scope="module")
def router(adapter):
    return TrainedCoTRewriter(model="embedded", adapter=str(adapter), clock=CLOCK)


@pytest.fixture(scope="module")
def wrapper(router):
    registry = ve.VirtualExpertRegistry()
    registry.register(ve.MathExpert())  # as Lazarus's default registry holds it
    register_lazarus_experts(router, registry)
    return ve.VirtualDenseWrapper(router.model, router.tokenizer, registry=registry, cot_rewriter=router)


def test_the_router_is_lazaruss_rewriter_and_writes_its_actions(router, wrapper):
    assert isinstance(router, ve.CoTRewriter)
    action = router.rewrite("What time is it in London?", [p.name for p in wrapper.registry.get_all()])
    assert type(action) is ve.VirtualExpertAction
    assert (action.expert, action.operation, action.parameters) == ("time", "get_time", {"timezone": "Europe/London"})
    assert action.reasoning == "time: London -> 12:00 GMT" and 0 < action.confidence <= 1
    # Lazarus announced its experts to the rewriter (set_expert_info) when the wrapper was built.
    assert {"math", "time", "schedule", "word_problem"} <= set(router._expert_info)


@pytest.mark.parametrize("query, line, plugin, answer", ROUTED,
                         ids=[line.split(":")[0] + ("-answer-in-french" if "french" in query else "")
                              for query, line, _, _ in ROUTED])
def test_solve_dispatches_to_the_expert_and_answers(router, wrapper, query, line, plugin, answer):
    action = router.rewrite(query, [p.name for p in wrapper.registry.get_all()])
    assert action.reasoning == line, f"the router wrote {action.reasoning!r} for {query!r}"
    result = wrapper.solve(query)
    assert (result.plugin_name, result.answer) == (plugin, answer)
    assert result.used_virtual_expert and result.approach == VirtualExpertApproach.VIRTUAL_EXPERT
    assert result.routing_score > wrapper.routing_threshold
    assert result.prompt == query  # a request about the answer's form stays visible to the host


def test_solve_passes_chat_through_to_the_model(router, wrapper):
    action = router.rewrite(CHAT, [p.name for p in wrapper.registry.get_all()])
    assert action.is_passthrough() and action.expert == "none"
    result = wrapper.solve(CHAT)
    assert not result.used_virtual_expert and result.plugin_name is None
    assert result.approach == VirtualExpertApproach.MODEL_DIRECT and result.prompt == CHAT


def test_lazarus_dispatches_every_kind_of_action_the_router_writes(router, wrapper):
    """Lazarus dispatches an action only when its calibrated hidden-state score is above the
    threshold: gold actions of held-out queries, ten per expert, all pass for their expert."""
    import random

    from chuk_virtual_expert import VirtualExpertAction

    from lazarus_cot_router.grammar import render_line
    from training.generators import sample_example

    if not wrapper._calibrated:
        wrapper.calibrate()
    index = {plugin.name: i for i, plugin in enumerate(wrapper.registry.get_all())}
    rng, failed, checked = random.Random(7), [], 0
    for name, expert in router.experts.items():
        for _ in range(10):
            example = sample_example(expert, rng, "heldout")
            host = expert.host_action(example.spec)
            if host.expert == "none":
                continue
            action = VirtualExpertAction(expert=host.expert, operation=host.operation, parameters=dict(host.parameters),
                                         confidence=rng.uniform(0.3, 1.0),
                                         reasoning=render_line(name, example.spec, expert.execute(example.spec)))
            hidden = wrapper._get_hidden_state(action.model_dump_json())
            score = wrapper.router.get_routing_score(hidden[None, None, :], index[host.expert])
            checked += 1
            if score <= wrapper.routing_threshold:
                failed.append((action.reasoning, round(score, 3)))
    assert checked == 70 and not failed


def _section(text: str, title: str) -> str | None:
    """The text under the heading ``title``, up to the next heading of its level or above."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, re.M)
    if match is None:
        return None
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end(): end.start() if end else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.M | re.S)


def _run_snippet(section: str, adapter, tmp_path) -> None:
    """Write the section's YAML as lazarus.yaml (its adapter: the one trained here), run its
    Python there, and check that each print writes what its comment says."""
    (yaml_text,), (python,) = _blocks(section, "yaml"), _blocks(section, "python")[:1]
    config = re.sub(r"adapter: [^,}\n]+", f"adapter: {adapter}", yaml_text)
    (tmp_path / "lazarus.yaml").write_text(config)
    expected = [line.split("#", 1)[1].strip() for line in python.splitlines()
                if line.lstrip().startswith("print(") and "#" in line]
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(python, "lazarus-snippet", "exec"), {"__name__": "lazarus_snippet"})
    finally:
        os.chdir(cwd)
    assert out.getvalue().splitlines() == expected


def test_the_documented_snippet_runs(adapter, tmp_path):
    from chuk_lazarus.inference.virtual_experts.registry import reset_default_registry

    sections = {"docs/lazarus.md": _section((ROOT / "docs" / "lazarus.md").read_text(), "Enabling it in Lazarus")}
    readme = _section((ROOT / "README.md").read_text(), "Enabling it in Lazarus")
    if readme is not None:
        sections["README.md"] = readme
    assert sections["docs/lazarus.md"] is not None
    for where, section in sections.items():
        reset_default_registry()  # the snippet registers into Lazarus's default registry
        try:
            (tmp_path / where.replace("/", "_")).mkdir()
            _run_snippet(section, adapter, tmp_path / where.replace("/", "_"))
        finally:
            reset_default_registry()
