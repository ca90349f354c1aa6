"""What differs between the supported mlx-lm versions (0.29.1, what pip resolves
beside chuk-lazarus 0.4.1, to the newest): KV-cache state, fast math without
``mlx_lm.models.activations``, ``BatchGenerator`` with and without logits
processors and its stream, adapter shape checks; and that the package imports
without Lazarus. ``make test`` runs these on the newest versions,
``scripts/test-lazarus.sh`` on the lowest."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import mlx.core as mx
import pytest
from mlx_lm.models.cache import KVCache

from lazarus_cot_router import fast_math
from lazarus_cot_router.decoding import SharedPrefix, batch_generator_class, decode_batch, kv_cache, kv_contents
from lazarus_cot_router.worker import run_on_model_thread

from conftest import ROOT, subprocess_env

HAS_ACTIVATIONS = importlib.util.find_spec("mlx_lm.models.activations") is not None


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from lazarus_cot_router.models import load

    return load(str(tiny_model_dir))


def _filled_cache(tokens: int, seed: int = 0) -> tuple[KVCache, mx.array, mx.array]:
    keys = mx.random.normal((1, 2, tokens, 8), key=mx.random.key(seed))
    values = mx.random.normal((1, 2, tokens, 8), key=mx.random.key(seed + 1))
    cache = KVCache()
    cache.update_and_fetch(keys, values)  # mlx-lm allocates 256-token steps: arrays run past the offset
    return cache, keys, values


def test_kv_contents_are_the_cached_tokens_only():
    cache, keys, values = _filled_cache(5)
    got_keys, got_values = kv_contents(cache)
    assert got_keys.shape == (1, 2, 5, 8) and mx.array_equal(got_keys, keys).item()
    assert mx.array_equal(got_values, values).item()


def test_kv_cache_copy_grows_without_writing_into_the_original():
    cache, keys, values = _filled_cache(5)
    copy = kv_cache(*kv_contents(cache))
    assert copy.offset == 5
    more = mx.ones((1, 2, 3, 8))
    all_keys, _ = copy.update_and_fetch(more, more)
    assert all_keys.shape[2] == 8 and mx.array_equal(all_keys[:, :, :5], keys).item()
    assert mx.array_equal(kv_contents(cache)[0], keys).item() and cache.offset == 5


def test_shared_prefix_forks_hold_the_prefix(tiny):
    model, _ = tiny
    prefix = SharedPrefix(model, [1, 5, 9, 200, 17])
    fork = prefix.fork()
    assert [layer.offset for layer in fork] == [5] * len(fork)
    for mine, theirs in zip(fork, prefix.cache):
        assert mx.array_equal(kv_contents(mine)[0], kv_contents(theirs)[0]).item()


def test_fast_math_replaces_what_this_mlx_lm_defines(tiny_model_dir):
    import mlx_lm
    from mlx_lm.models import base, llama

    assert fast_math.replaceable() == (["scaled_dot_product_attention", "swiglu"] if HAS_ACTIVATIONS
                                       else ["scaled_dot_product_attention"])
    before = dict(fast_math._INSTALLED)
    fast_math.restore()
    try:
        model, _ = mlx_lm.load(str(tiny_model_dir))
        tokens = mx.array([[1, 5, 9, 200, 17, 3, 3, 8] * 4])
        stock = model(tokens)
        changed = fast_math.install(model)
        assert sorted(changed) == [f"mlx_lm.models.llama.{name}" for name in fast_math.replaceable()]
        assert llama.scaled_dot_product_attention is fast_math.scaled_dot_product_attention
        assert mx.allclose(model(tokens), stock, atol=1e-4).item()
        fast_math.restore()
        assert llama.scaled_dot_product_attention is base.scaled_dot_product_attention
    finally:
        fast_math.restore()
        for (name, attr), original in before.items():
            setattr(sys.modules[name], attr, fast_math._fast_version(attr, original))
            fast_math._INSTALLED[(name, attr)] = original


class Force:
    """A logits processor that allows one token per step and records what it saw."""

    def __init__(self, tokens):
        self.tokens, self.contexts = list(tokens), []

    def __call__(self, context, logits):
        self.contexts.append(context.tolist())
        keep = self.tokens[min(len(self.contexts) - 1, len(self.tokens) - 1)]
        return mx.where(mx.arange(logits.shape[-1]) == keep, logits, -mx.inf)


def _prompts(tokenizer):
    return [tokenizer.encode(text, add_special_tokens=False) for text in ("one two three four", "hello", "a b c")]


def test_logits_processors_apply_per_sequence_before_normalizing(tiny):
    model, tokenizer = tiny
    prompts = _prompts(tokenizer)
    forced = [tokenizer.encode(" alpha beta gamma", add_special_tokens=False)[:3],
              tokenizer.encode(" one two three", add_special_tokens=False)[:3]]
    first, last = Force(forced[0]), Force(forced[1])
    stop = lambda _: False  # noqa: E731
    plain = decode_batch(model, tokenizer, prompts, max_tokens=3, stop_text=stop)
    outs = decode_batch(model, tokenizer, prompts, max_tokens=3, stop_text=stop, logits_processors=[first, None, last])
    assert outs[0].tokens == forced[0] and outs[2].tokens == forced[1]
    assert outs[1].tokens == plain[1].tokens  # no processor: the model's own choice
    assert all(abs(lp) < 1e-5 for lp in outs[0].logprobs + outs[2].logprobs)  # one allowed token: probability 1
    # Each processor sees its own sequence: the prompt's last token, then one more token per step.
    for processor, prompt, tokens in ((first, prompts[0], forced[0]), (last, prompts[2], forced[1])):
        assert processor.contexts[0][-1] == prompt[-1]
        start = len(processor.contexts[0])
        # (a generator may compute one step past the last token it returns)
        assert [c[start:] for c in processor.contexts][: len(tokens)] == [tokens[:i] for i in range(len(tokens))]


def test_batched_decoding_runs_on_the_model_thread(tiny):
    """The rewriters decode on their own thread; mlx-lm before 0.31 made its
    generation stream on the importing thread, which recent MLX refuses."""
    model, tokenizer = tiny
    prompts = _prompts(tokenizer)
    here = decode_batch(model, tokenizer, prompts, max_tokens=4, stop_text=lambda _: False)
    there = run_on_model_thread(decode_batch, model, tokenizer, prompts, max_tokens=4, stop_text=lambda _: False)
    assert [d.tokens for d in there] == [d.tokens for d in here]


def test_batch_generator_is_mlx_lms_own_where_it_has_everything():
    import inspect

    from mlx_lm.generate import BatchGenerator

    cls = batch_generator_class()
    assert issubclass(cls, BatchGenerator)
    native = "logits_processors" in inspect.signature(BatchGenerator.insert).parameters
    assert (cls is BatchGenerator) == (native and hasattr(BatchGenerator, "next_generated"))


def test_wrong_shaped_adapter_is_refused(tiny_model_dir, tmp_path):
    from lazarus_cot_router.models import ModelLoadError, load
    from training.adapters import adapter_config, save_adapter
    from training.sft import setup_trainable

    model, _ = load(str(tiny_model_dir))
    setup_trainable(model, "full", 1)
    adapter = save_adapter(tmp_path / "adapter", model, adapter_config("full", 1, None))
    weights = mx.load(str(adapter / "adapters.safetensors"))
    mx.eval(weights)  # read it all before the file is rewritten (MLX may load lazily)
    name = next(k for k in weights if k.endswith("mlp.down_proj.weight"))
    weights[name] = mx.zeros((weights[name].shape[0], 3))
    mx.save_safetensors(str(adapter / "adapters.safetensors"), weights)
    # mlx-lm 0.32 refuses it itself; before, models.load checks the shapes
    with pytest.raises(ModelLoadError, match=r"cannot load adapter .*down_proj"):
        load(str(tiny_model_dir), adapter_path=str(adapter))


def test_package_imports_without_lazarus():
    code = (
        "import sys\n"
        "sys.modules['chuk_lazarus'] = None\n"
        "sys.modules['chuk_virtual_expert'] = None\n"
        "import lazarus_cot_router.lazarus_experts as le, lazarus_cot_router.rewriter as rw, lazarus_cot_router.actions as a\n"
        "assert a.host_rewriter_base() is a.CoTRewriterBase and a.host_action_class() is a.VirtualExpertAction\n"
        "try:\n"
        "    le.register_lazarus_experts()\n"
        "except ImportError:\n"
        "    print('needs lazarus')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(LAZARUS_COT_ROUTER_NO_REEXEC="1"),
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "needs lazarus"
