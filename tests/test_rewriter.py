"""TrainedCoTRewriter and FewShotCoTRewriter on the embedded model, and the
shared-prefix batched decoding under them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import mlx.core as mx
import pytest
from mlx_lm.generate import generate_step

from lazarus_cot_router.decoding import Decoded, SharedPrefix, decode_batch
from lazarus_cot_router.few_shot import FewShotCoTRewriter, first_json_object, json_closed
from lazarus_cot_router.prompts import QUERY_LAYOUTS, encode_prompt, lay_out_query
from lazarus_cot_router.rewriter import RouteResult, TrainedCoTRewriter

from conftest import ROOT, subprocess_env

CLOCK = lambda: datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc)  # noqa: E731
QUERIES = ["What is 256 * 4?", "Current time in Tokyo", "Tell me a joke", "72 / 9"]


@pytest.fixture(scope="module")
def router(embedded_model):
    return TrainedCoTRewriter(loaded=embedded_model, clock=CLOCK)


def greedy_reference(model, tokenizer, ids, max_tokens):
    """Plain mlx-lm greedy decoding of the whole prompt, no shared prefix."""
    out = []
    for token, _ in generate_step(mx.array(ids), model, max_tokens=max_tokens):
        out.append(int(token))
    return out


@pytest.mark.slow
def test_shared_prefix_decoding_equals_full_prompt_decoding(router):
    model, tok = router.model, router.tokenizer
    prefix = SharedPrefix(model, router.prefix_ids)
    suffixes = [encode_prompt(tok, router.system_prompt, q)[1] for q in QUERIES]
    batched = decode_batch(model, tok, suffixes, prefix=prefix, max_tokens=8, stop_text=lambda _: False)
    for suffix, got in zip(suffixes, batched):
        want = greedy_reference(model, tok, router.prefix_ids + suffix, 8)
        if got.finish == "eot":  # the reference does not stop at the end of the turn
            assert got.tokens[-1] in tok.eos_token_ids
            want = want[: len(got.tokens)]
        assert got.tokens == want
        assert len(got.logprobs) == len(got.tokens) and all(lp <= 0 for lp in got.logprobs)


@pytest.mark.slow
def test_long_prompts_prefill_in_steps_as_in_one_pass(router):
    """Prompts longer than PREFILL_STEP_SIZE go through the model in steps: the
    same cache and the same greedy tokens as one pass over the whole prompt."""
    from mlx_lm.models.cache import make_prompt_cache

    from lazarus_cot_router.decoding import PREFILL_STEP_SIZE

    model, tok = router.model, router.tokenizer
    long_prefix = router.prefix_ids * (PREFILL_STEP_SIZE // len(router.prefix_ids) + 2)
    assert len(long_prefix) > 2 * PREFILL_STEP_SIZE
    stepped = SharedPrefix(model, long_prefix)
    whole = make_prompt_cache(model)
    model(mx.array(long_prefix)[None], cache=whole)
    for a, b in zip(stepped.cache, whole):
        assert a.offset == b.offset == len(long_prefix)
        assert mx.allclose(a.state[0], b.state[0], atol=1e-4).item()
    suffix = encode_prompt(tok, router.system_prompt, QUERIES[0])[1]
    got = decode_batch(model, tok, [long_prefix + suffix], max_tokens=6, stop_text=lambda _: False)[0]
    want = greedy_reference(model, tok, long_prefix + suffix, 6)
    assert got.tokens == want[: len(got.tokens)] and len(got.tokens) >= 1


def test_the_model_reads_a_thousands_separated_number_as_a_spec_writes_it(router):
    tok, system = router.tokenizer, router.system_prompt
    assert encode_prompt(tok, system, "what is 1,234 + 54,788.5") == encode_prompt(tok, system, "what is 1234 + 54788.5")
    assert encode_prompt(tok, system, "1,2,3") != encode_prompt(tok, system, "123")  # a list, not a number


def test_query_layouts_put_a_longer_querys_last_sentence_first():
    query = "Dan had 5 apples. He ate 2.5 of them. How many are left?"
    assert lay_out_query(query) == lay_out_query(query, "as_written") == query
    assert lay_out_query(query, "question_first") == "How many are left?\n" + query
    assert lay_out_query(query, "question_moved") == "How many are left?\nDan had 5 apples. He ate 2.5 of them."
    for layout in QUERY_LAYOUTS:
        assert lay_out_query("What is 2.5 + 3?", layout) == "What is 2.5 + 3?"
    with pytest.raises(ValueError, match="query layout must be one of"):
        lay_out_query(query, "reversed")


def test_a_router_reads_queries_as_its_adapter_was_trained_to(embedded_model, tmp_path):
    from lazarus_cot_router.adapters import CONFIG_FILE

    query = "Dan had 5 apples. He ate 2 of them. How many are left?"
    counts = {}
    for layout in ("as_written", "question_first"):
        adapter = tmp_path / layout
        adapter.mkdir()
        (adapter / CONFIG_FILE).write_text(json.dumps({"fine_tune_type": "full", "num_layers": 1, "query_layout": layout}))
        rewriter = TrainedCoTRewriter(loaded=embedded_model, adapter=str(adapter), clock=CLOCK)
        assert rewriter.query_layout == layout
        suffix = encode_prompt(rewriter.tokenizer, rewriter.system_prompt, query, layout)[1]
        counts[layout] = rewriter.route_batch([query])[0].prompt_tokens
        assert counts[layout] == len(rewriter.prefix_ids) + len(suffix)
    assert counts["question_first"] > counts["as_written"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / CONFIG_FILE).write_text(json.dumps({"fine_tune_type": "full", "num_layers": 1}))
    assert TrainedCoTRewriter(loaded=embedded_model, adapter=str(tmp_path / "old")).query_layout == "as_written"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / CONFIG_FILE).write_text(json.dumps({"fine_tune_type": "full", "num_layers": 1, "query_layout": "mirrored"}))
    with pytest.raises(ValueError, match="query layout 'mirrored'"):
        TrainedCoTRewriter(loaded=embedded_model, adapter=str(tmp_path / "new"))


def test_prefix_is_not_modified_by_decoding(router):
    prefix = SharedPrefix(router.model, router.prefix_ids)
    before = [mx.array(c.state[0]) for c in prefix.cache]
    suffix = encode_prompt(router.tokenizer, router.system_prompt, "hello")[1]
    decode_batch(router.model, router.tokenizer, [suffix], prefix=prefix, max_tokens=4)
    assert all(mx.array_equal(b, c.state[0]).item() for b, c in zip(before, prefix.cache))
    assert all(c.offset == len(router.prefix_ids) for c in prefix.cache)


def test_decoding_stops_right_after_the_arrow(router):
    model, tok = router.model, router.tokenizer
    # Force the line by teacher-forcing it into the prompt: the next token ends it.
    text_so_far = "multiply: 256 * 4 -"
    suffix = encode_prompt(tok, router.system_prompt, "256 * 4")[1] + tok.encode(text_so_far, add_special_tokens=False)
    out = decode_batch(model, tok, [suffix], prefix=SharedPrefix(model, router.prefix_ids), max_tokens=3,
                       stop_text=lambda t: (text_so_far + t).rstrip().endswith("->"))[0]
    assert out.finish in ("arrow", "eot", "length")
    if out.finish == "arrow":
        assert (text_so_far + out.text).rstrip().endswith("->")


@pytest.mark.slow
def test_batch_equals_sequential(router):
    batch = [a.model_dump() for a in router.rewrite_batch(QUERIES)]
    sequential = [router.rewrite(q).model_dump() for q in QUERIES]
    # Padded batches round differently from single rows: confidences agree to float32 noise only.
    assert [a.pop("confidence") for a in batch] == pytest.approx([a.pop("confidence") for a in sequential], rel=1e-4)
    assert batch == sequential


@pytest.mark.slow
def test_untrained_router_returns_valid_actions(router):
    for action in router.rewrite_batch(QUERIES + ["", "   "], ["math", "time"]):
        data = json.loads(action.model_dump_json())
        assert set(data) >= {"expert", "operation", "parameters", "confidence", "reasoning"}
        assert 0.0 <= data["confidence"] <= 1.0
        assert data["reasoning"]


def _route_with_output(router, text: str, available=None):
    result = RouteResult(query="q", raw="")
    router._execute(result, Decoded(tokens=router.tokenizer.encode(text, add_special_tokens=False),
                                    text=text, logprobs=[-0.1] * 20, finish="arrow"))
    return result, router.to_action(result, available)


def test_executes_the_line_and_maps_to_the_host_action(router):
    result, action = _route_with_output(router, "multiply: 256 * 4 ->")
    assert result.line == "multiply: 256 * 4 -> 1024"
    assert (action.expert, action.operation, action.parameters) == ("math", "evaluate", {"expression": "256 * 4"})
    assert action.reasoning == "multiply: 256 * 4 -> 1024"
    assert 0.0 < action.confidence <= 1.0

    _, action = _route_with_output(router, "time: Tokyo ->")
    assert action.parameters == {"timezone": "Asia/Tokyo"} and action.reasoning == "time: Tokyo -> 21:00 JST"


@pytest.mark.parametrize(
    "output, available, why",
    [
        ("the answer is 4", None, "unparseable"),
        ("divide: 1 / 0 ->", None, "could not execute"),
        ("teleport: mars ->", None, "not a registered expert"),
        ("time: Qwxzzyville ->", None, "could not execute"),
        ("multiply: 2 * 3 ->", ["time"], "not among the available experts"),
    ],
)
def test_failures_become_passthrough_with_a_reason(router, output, available, why):
    _, action = _route_with_output(router, output, available)
    assert action.is_passthrough()
    assert why in action.reasoning


def test_chat_line_is_a_passthrough_even_when_only_math_is_available(router):
    _, action = _route_with_output(router, "chat: ->", ["math"])
    assert action.is_passthrough() and action.reasoning == "chat: -> [response]"


def test_long_query_is_truncated_and_reported(router):
    action = router.rewrite("What is 2 + 2? " + "x" * 5000)
    assert "truncated" in action.reasoning


# -- few-shot baseline --------------------------------------------------------

def test_few_shot_prompt_follows_lazarus(embedded_model):
    few = FewShotCoTRewriter(loaded=embedded_model, examples_per_expert=2)
    prompt = few.build_prompt("What is 3 * 3?", ["multiply", "time"])
    assert "- **multiply**:" in prompt and "- **time**:" in prompt and "- **divide**" not in prompt
    assert prompt.count('Query: "') == 2 + 2 + 2 + 1  # 2 per expert, 2 passthrough, the query
    assert 'Query: "Tell me a joke"' in prompt and 'Query: "What is the capital of France?"' in prompt
    assert prompt.endswith('Query: "What is 3 * 3?"\nAction:')


def test_few_shot_parses_the_first_json_object(embedded_model):
    few = FewShotCoTRewriter(loaded=embedded_model)
    text = ' {"expert": "multiply", "operation": "evaluate", "parameters": {"expression": "6 * 7"}, "confidence": 0.9, "reasoning": "x"} trailing {"a": 1}'
    action = few.parse_action(text)
    assert (action.expert, action.parameters, action.reasoning) == ("math", {"expression": "6 * 7"}, "multiply: 6 * 7 -> 42")
    assert few.parse_action("no json here").is_passthrough()
    assert few.parse_action('{"expert": "none", "operation": "passthrough"}').is_passthrough()
    assert first_json_object('x {"s": "}{"} y') == {"s": "}{"}
    assert json_closed('{"a": {"b": 1}}') and not json_closed('{"a": {')


@pytest.mark.slow
def test_few_shot_prefix_cache_gives_the_same_routes(embedded_model):
    options = dict(loaded=embedded_model, max_tokens=40, clock=CLOCK)
    plain = FewShotCoTRewriter(**options).route_batch(QUERIES[:2])
    cached = FewShotCoTRewriter(cache_prefix=True, **options).route_batch(QUERIES[:2])
    assert [(r.raw, r.expert, r.spec) for r in plain] == [(r.raw, r.expert, r.spec) for r in cached]
    assert plain[0].prompt_tokens == cached[0].prompt_tokens > 500


def test_few_shot_passthrough_maps_to_the_passthrough_expert(embedded_model):
    few = FewShotCoTRewriter(loaded=embedded_model)
    result = RouteResult(query="q", raw="")
    few._read_action(result, '{"expert": "none", "operation": "passthrough", "parameters": {}}')
    assert result.expert == "chat" and result.spec == "" and few.to_action(result).is_passthrough()


# -- CLI end to end --------------------------------------------------------------

@pytest.mark.parametrize("rewriter", ["trained-cot", "few-shot"])
@pytest.mark.slow
def test_route_cli_end_to_end(embedded_dir, tmp_path, rewriter):
    config = tmp_path / "lazarus.yaml"
    options = "{max_tokens: 24}"
    config.write_text(f"virtual_experts:\n  rewriter: {rewriter}\n  {rewriter}: {options}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "commands", "route", "--config", str(config), "--json", "Time in London, answer in french"],
        capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    action = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(action) >= {"expert", "operation", "parameters", "confidence", "reasoning"}
    assert 0.0 <= action["confidence"] <= 1.0
