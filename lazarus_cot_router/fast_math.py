"""Faster exponentials for MLX on the CPU.

MLX's CPU backend computes ``exp`` one element at a time through the C
library, so the SiLU of every MLP block, the softmax of every attention block
and the log-sum-exp over the vocabulary cost more than some of a block's
matrix products there (``bench/fast_math.py`` times exp alone and end to end). :func:`fast_exp` is exp from
elementwise arithmetic MLX fuses and vectorizes (``2**n * 2**f`` with a
polynomial for ``2**f``; relative error below 2e-6, gradient ``g * exp(x)``),
about 5x faster.

:func:`install` points the mlx-lm model modules of a loaded model at
:func:`swiglu` and :func:`scaled_dot_product_attention` built on it. It does
so only while MLX computes on the CPU (on a GPU the fused kernels are better)
and not when ``LAZARUS_COT_ROUTER_FAST_MATH=0``. Everything else about the
model (weights, caches, masks, mlx-lm's generation) is unchanged.
"""

from __future__ import annotations

import functools
import os
import sys

import mlx.core as mx

_LOG2E = 1.4426950408889634
# Taylor coefficients of 2**f = exp(f ln 2) to degree 7: under 2e-6 relative error on [0, 1).
_POLY = (1.0, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158, 0.009618129107628477,
         0.0013333558146428443, 0.00015403530393381609, 1.525273380405984e-05)
_ENV = "LAZARUS_COT_ROUTER_FAST_MATH"


def _exp_float32(x: mx.array) -> mx.array:
    # Below 2**-126 the result is exactly 0 (biased exponent 0): subnormals would slow every
    # later product by two orders of magnitude (masked attention scores land there).
    t = mx.clip(x * _LOG2E, -127.0, 127.0)
    n = mx.floor(t)
    f = t - n
    p = _POLY[-1]
    for c in reversed(_POLY[:-1]):
        p = c + f * p
    return p * ((n.astype(mx.int32) + 127) << 23).view(mx.float32)


@mx.custom_function
def _exp(x: mx.array) -> mx.array:
    return _exp_float32(x.astype(mx.float32)).astype(x.dtype)


@_exp.vjp
def _exp_vjp(primals, cotangent, output):
    return cotangent * output


@mx.compile
def fast_exp(x: mx.array) -> mx.array:
    """``exp(x)`` to within 2e-6 relative; 0 below about -88, 2**127 above 88."""
    return _exp(x)


@mx.compile
def swiglu(gate: mx.array, x: mx.array) -> mx.array:
    """``silu(gate) * x``, as mlx-lm's ``swiglu``."""
    return gate * x / (1.0 + _exp(-gate))


@mx.compile
def _softmax_last(scores: mx.array) -> mx.array:
    top = mx.stop_gradient(mx.max(scores, axis=-1, keepdims=True))
    e = _exp(scores - top)
    return e / e.sum(axis=-1, keepdims=True)


@mx.compile
def _logsumexp_last(x: mx.array) -> mx.array:
    top = mx.stop_gradient(mx.max(x, axis=-1, keepdims=True))
    return (mx.log(_exp(x - top).sum(axis=-1, keepdims=True)) + top).squeeze(-1)


def logsumexp(x: mx.array, axis: int = -1) -> mx.array:
    """``mx.logsumexp(x, axis)``; on :func:`fast_exp` when :func:`enabled`."""
    if not enabled():
        return mx.logsumexp(x, axis=axis)
    return _logsumexp_last(mx.moveaxis(x, axis, -1) if axis not in (-1, x.ndim - 1) else x)


def cross_entropy(logits: mx.array, labels: mx.array) -> mx.array:
    """Per-row cross-entropy of integer ``labels`` (``nn.losses.cross_entropy``)."""
    chosen = mx.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return logsumexp(logits, axis=-1) - chosen


#: Below this many attention scores (one query's decoding step), MLX's fused kernel is faster:
#: its exp costs less than the extra operations.
SMALL_ATTENTION = 16384
# Finite, so a row with every key masked (left padding) averages instead of giving NaN.
_MASKED = float(mx.finfo(mx.float32).min)


def _causal_mask(length: int, keys: int) -> mx.array:
    rows = mx.arange(keys - length, keys)[:, None]
    return rows >= mx.arange(keys)[None]


def scaled_dot_product_attention(queries, keys, values, cache, scale: float, mask, sinks=None) -> mx.array:
    """mlx-lm's ``scaled_dot_product_attention`` (same arguments), with the
    softmax on :func:`fast_exp`; quantized caches and attention sinks go to
    mlx-lm's own."""
    batch, heads, length, dim = queries.shape
    kv_heads, n_keys = keys.shape[1], keys.shape[2]
    if (sinks is not None or hasattr(cache, "bits") or mx.default_device() != mx.cpu
            or batch * heads * length * n_keys < SMALL_ATTENTION):
        return _mlx_lm_functions()["scaled_dot_product_attention"](queries, keys, values, cache, scale=scale,
                                                                      mask=mask, sinks=sinks)
    repeats = heads // kv_heads
    # The query heads that share a key head are stacked along the length axis: plain 4-D matmuls.
    q = (queries * scale).reshape(batch, kv_heads, repeats * length, dim)
    scores = q @ keys.swapaxes(-1, -2)
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"unknown attention mask {mask!r}")
        mask = _causal_mask(length, n_keys)
    if mask is not None:
        # As MLX broadcasts it against (batch, heads, length, keys), then stacked like the queries.
        mask = mx.broadcast_to(mask, (*mask.shape[:-2], length, n_keys))
        mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
        if mask.shape[1] == heads and repeats > 1:
            mask = mask.reshape(mask.shape[0], kv_heads, repeats * length, n_keys)
        elif repeats > 1:
            mask = mx.tile(mask, (1, 1, repeats, 1))
        if mask.dtype == mx.bool_:
            scores = mx.where(mask, scores, _MASKED)
        else:
            scores = scores + mask.astype(scores.dtype)
    weights = _softmax_last(scores.astype(mx.float32)).astype(values.dtype)
    return (weights @ values).reshape(batch, heads, length, -1)


@functools.cache
def _mlx_lm_functions() -> dict[str, object]:
    """mlx-lm's own functions that :func:`install` replaces (imported on first use).

    mlx-lm before 0.30 has no ``mlx_lm.models.activations``: its blocks call
    ``nn.silu(gate) * x`` inline, so there is no ``swiglu`` to replace and the
    SiLU stays MLX's own (attention still gets the fast softmax)."""
    from mlx_lm.models import base

    functions = {"scaled_dot_product_attention": base.scaled_dot_product_attention}
    try:
        from mlx_lm.models import activations
    except ImportError:
        pass
    else:
        functions["swiglu"] = activations.swiglu
    return functions


def replaceable() -> list[str]:
    """The mlx-lm functions the installed mlx-lm lets :func:`install` replace."""
    return sorted(_mlx_lm_functions())


def _fast_version(name: str, function) -> object | None:
    """This module's replacement for ``function`` if it is mlx-lm's own ``name``."""
    original = _mlx_lm_functions().get(name)
    if original is None or function is not original:
        return None
    return {"swiglu": swiglu, "scaled_dot_product_attention": scaled_dot_product_attention}[name]


_INSTALLED: dict[tuple[str, str], object] = {}


def enabled() -> bool:
    """True when fast math applies: MLX computes on the CPU and the
    environment does not turn it off."""
    return os.environ.get(_ENV, "1") != "0" and mx.default_device() == mx.cpu


def install(model) -> list[str]:
    """Point the mlx-lm modules that define ``model``'s blocks at the fast
    functions (when :func:`enabled`); returns the ``module.function`` names
    changed. Idempotent; modules that use other functions are left alone."""
    if not enabled():
        return []
    changed = []
    for name in sorted({type(m).__module__ for _, m in model.named_modules()}):
        module = sys.modules.get(name)
        if module is None or not name.startswith("mlx_lm.models."):
            continue
        for attr in ("swiglu", "scaled_dot_product_attention"):
            current = getattr(module, attr, None)
            replacement = _fast_version(attr, current)
            if replacement is not None:
                _INSTALLED[(name, attr)] = current
                setattr(module, attr, replacement)
                changed.append(f"{name}.{attr}")
    return changed


def restore() -> None:
    """Undo every :func:`install` (mlx-lm's own functions again)."""
    while _INSTALLED:
        (name, attr), original = _INSTALLED.popitem()
        setattr(sys.modules[name], attr, original)


def installed() -> list[str]:
    """The ``module.function`` names currently pointed at the fast functions."""
    return sorted(f"{name}.{attr}" for name, attr in _INSTALLED)
