"""fast_math: exp, SwiGLU, attention and log-sum-exp agree with MLX's own
(values and gradients), and installing them leaves a model's outputs as they were."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx_lm.models import activations, base, llama

from lazarus_cot_router import fast_math


@pytest.fixture
def restored():
    """Run the test with mlx-lm's own functions in place; re-install afterwards
    what the session had installed (other tests' models were loaded with it)."""
    import sys

    before = dict(fast_math._INSTALLED)
    fast_math.restore()
    yield
    fast_math.restore()
    for (name, attr), original in before.items():
        setattr(sys.modules[name], attr, fast_math._fast_version(attr, original))
        fast_math._INSTALLED[(name, attr)] = original


def test_fast_exp_matches_exp_and_underflows_to_exact_zero():
    x = mx.linspace(-87.0, 88.0, 200_001)
    rel = mx.abs(fast_math.fast_exp(x) - mx.exp(x)) / mx.exp(x)
    assert rel.max().item() < 2e-6
    assert fast_math.fast_exp(mx.array([-100.0, -1e30, -mx.inf])).tolist() == [0.0, 0.0, 0.0]
    assert mx.isfinite(fast_math.fast_exp(mx.array([100.0, 1e30]))).all().item()


def test_fast_exp_gradient_is_exp():
    x = mx.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    grad = mx.grad(lambda v: fast_math.fast_exp(v).sum())(x)
    assert mx.allclose(grad, mx.exp(x), rtol=1e-5).item()


def test_fast_exp_keeps_dtype():
    x = mx.array([0.5, -2.0], dtype=mx.bfloat16)
    assert fast_math.fast_exp(x).dtype == mx.bfloat16


def test_swiglu_matches_mlx_lm_in_value_and_gradient():
    gate, x = mx.random.normal((3, 5, 64), key=mx.random.key(1)) * 6, mx.random.normal((3, 5, 64), key=mx.random.key(2))
    assert mx.allclose(fast_math.swiglu(gate, x), activations.swiglu(gate, x), atol=1e-5).item()
    ours = mx.grad(lambda g, v: (fast_math.swiglu(g, v) ** 2).sum(), argnums=(0, 1))(gate, x)
    theirs = mx.grad(lambda g, v: ((nn.silu(g) * v) ** 2).sum(), argnums=(0, 1))(gate, x)
    for a, b in zip(ours, theirs):
        assert mx.allclose(a, b, rtol=1e-4, atol=1e-4).item()


def _qkv(batch, heads, kv_heads, length, keys, dim=16, seed=0):
    k = mx.random.key(seed)
    kq, kk, kv = mx.random.split(k, 3)
    return (mx.random.normal((batch, heads, length, dim), key=kq), mx.random.normal((batch, kv_heads, keys, dim), key=kk),
            mx.random.normal((batch, kv_heads, keys, dim), key=kv))


def _masks(batch, heads, length, keys):
    keep = mx.random.uniform(shape=(batch, 1, length, keys), key=mx.random.key(7)) > 0.3
    keep_per_head = mx.random.uniform(shape=(batch, heads, length, keys), key=mx.random.key(8)) > 0.3
    last = mx.arange(keys) == keys - 1  # every row keeps one key
    additive = mx.where(keep, 0.0, -1e9)
    return {"none": None, "causal": "causal", "bool": keep | last, "bool per head": keep_per_head | last,
            "bool 2-d": (keep | last)[0, 0], "additive": additive,
            "padding (batch, 1, 1, keys)": (mx.arange(keys) >= mx.arange(batch)[:, None])[:, None, None, :]}


@pytest.mark.parametrize("shape", [(2, 6, 2, 5, 12), (1, 4, 4, 7, 7), (3, 8, 1, 1, 20)],
                         ids=["gqa-prefix", "mha-square", "mqa-decode"])
@pytest.mark.parametrize("mask_name", ["none", "causal", "bool", "bool per head", "bool 2-d", "additive",
                                       "padding (batch, 1, 1, keys)"])
def test_attention_matches_mlx_in_value_and_gradient(shape, mask_name, monkeypatch):
    monkeypatch.setattr(fast_math, "SMALL_ATTENTION", 0)  # these shapes are small: take the fast path anyway
    batch, heads, kv_heads, length, keys = shape
    q, k, v = _qkv(batch, heads, kv_heads, length, keys)
    mask = _masks(batch, heads, length, keys)[mask_name]

    def ours(q, k, v):
        return fast_math.scaled_dot_product_attention(q, k, v, None, scale=0.3, mask=mask)

    def theirs(q, k, v):
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mask)

    assert mx.allclose(ours(q, k, v), theirs(q, k, v), atol=1e-5).item()
    g_ours = mx.grad(lambda *a: (ours(*a) ** 2).sum(), argnums=(0, 1, 2))(q, k, v)
    g_theirs = mx.grad(lambda *a: (theirs(*a) ** 2).sum(), argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(g_ours, g_theirs):
        assert mx.allclose(a, b, rtol=1e-4, atol=1e-4).item()


def test_attention_row_with_every_key_masked_is_finite(monkeypatch):
    monkeypatch.setattr(fast_math, "SMALL_ATTENTION", 0)
    q, k, v = _qkv(1, 2, 2, 3, 4)
    mask = mx.array([[True] * 4, [False] * 4, [True, False, True, False]])
    out = fast_math.scaled_dot_product_attention(q, k, v, None, scale=0.25, mask=mask)
    assert mx.isfinite(out).all().item()


def test_small_attention_goes_to_mlx_and_large_to_the_fast_path(monkeypatch):
    calls = []
    monkeypatch.setattr(fast_math, "_softmax_last", lambda s: calls.append(s.shape) or mx.softmax(s, axis=-1))
    decode = _qkv(1, 9, 3, 1, 140)
    fast_math.scaled_dot_product_attention(*decode, None, scale=0.125, mask=None)
    assert calls == []
    prefill = _qkv(2, 9, 3, 40, 140)
    fast_math.scaled_dot_product_attention(*prefill, None, scale=0.125, mask="causal")
    assert calls == [(2, 3, 120, 140)]


def test_logsumexp_and_cross_entropy_match_mlx():
    logits = mx.random.normal((6, 1000), key=mx.random.key(3)) * 8
    labels = mx.array([0, 5, 999, 17, 3, 500])
    assert mx.allclose(fast_math.logsumexp(logits, axis=-1), mx.logsumexp(logits, axis=-1), rtol=1e-6).item()
    assert mx.allclose(fast_math.cross_entropy(logits, labels), nn.losses.cross_entropy(logits, labels), atol=1e-4).item()
    g_ours = mx.grad(lambda z: fast_math.cross_entropy(z, labels).sum())(logits)
    g_theirs = mx.grad(lambda z: nn.losses.cross_entropy(z, labels).sum())(logits)
    assert mx.allclose(g_ours, g_theirs, atol=1e-6).item()


def test_install_changes_a_llama_models_functions_not_its_outputs(tiny_model_dir, restored):
    import mlx_lm

    model, _ = mlx_lm.load(str(tiny_model_dir))
    tokens = mx.array([[1, 5, 9, 200, 17, 3, 3, 8]])
    stock = model(tokens)
    assert sorted(fast_math.install(model)) == ["mlx_lm.models.llama.scaled_dot_product_attention", "mlx_lm.models.llama.swiglu"]
    assert llama.swiglu is fast_math.swiglu and llama.scaled_dot_product_attention is fast_math.scaled_dot_product_attention
    assert fast_math.install(model) == []  # idempotent
    assert mx.allclose(model(tokens), stock, atol=1e-4).item()
    fast_math.restore()
    assert llama.swiglu is activations.swiglu and llama.scaled_dot_product_attention is base.scaled_dot_product_attention


def test_install_is_off_by_environment(tiny_model_dir, restored, monkeypatch):
    import mlx_lm

    monkeypatch.setenv("LAZARUS_COT_ROUTER_FAST_MATH", "0")
    model, _ = mlx_lm.load(str(tiny_model_dir))
    assert not fast_math.enabled()
    assert fast_math.install(model) == []
    assert llama.swiglu is activations.swiglu
    logits = mx.random.normal((2, 50))
    assert mx.array_equal(fast_math.logsumexp(logits), mx.logsumexp(logits, axis=-1)).item()


def test_models_load_installs_on_cpu(tiny_model_dir, restored):
    from lazarus_cot_router.models import load

    load(str(tiny_model_dir))
    assert "mlx_lm.models.llama.swiglu" in fast_math.installed()
