"""Capture hidden states during the model's own forward calls.

:func:`install_capture` makes chosen decoder layers record their output during
the model's own forward calls (prefill and decode steps alike), with no extra
forward pass. MLX has no forward hooks, so each captured layer's class is swapped
for a subclass whose ``__call__`` calls through and, only while a recording is
open, keeps a slice of the output. The layer object, its attributes and its
parameters stay the same, so parameter names, weight loading and LoRA adapters
are untouched; :meth:`HiddenCapture.remove` restores the original classes.

:mod:`lazarus_cot_router.hidden_route` reads the route from what is captured.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import mlx.core as mx

#: Where a hidden state is read: the prompt's last token, or the token that writes the expert name.
POSITIONS = ("prompt_last", "expert_token")



def find_layers(model) -> list:
    """The decoder layer list of an mlx-lm model (``model.layers`` or
    ``model.model.layers``)."""
    for owner in (model, getattr(model, "model", None), getattr(model, "language_model", None)):
        layers = getattr(owner, "layers", None) if owner is not None else None
        if isinstance(layers, (list, tuple)) and layers:
            return list(layers)
    raise TypeError(f"cannot find the decoder layers of {type(model).__name__}")


class Recording:
    """What one ``with capture.recording():`` block saw: per layer, one array
    per forward call, each ``[B, K, D]`` (K = 1 for the default selection)."""

    def __init__(self, layers: Sequence[int]):
        self.steps: dict[int, list[mx.array]] = {i: [] for i in layers}

    def __len__(self) -> int:
        return min((len(v) for v in self.steps.values()), default=0)

    def hidden(self, layer: int, step: int = 0) -> mx.array:
        """``[B, D]``: the last selected position of forward call ``step``
        (0 = the prefill, 1 = the first decode step, ...)."""
        return self.steps[layer][step][:, -1, :]

    def stacked(self, layer: int) -> mx.array:
        """``[B, S, D]``: every selected position of every call, in order."""
        return mx.concatenate(self.steps[layer], axis=1)


class HiddenCapture:
    """Layer outputs recorded during normal forward calls. Build it with
    :func:`install_capture`."""

    def __init__(self, model, layers: Sequence[int] | str = "all"):
        self._layers = find_layers(model)
        n = len(self._layers)
        indices = range(n) if layers == "all" else [int(i) for i in layers]
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise IndexError(f"layer {bad[0]} out of range for a model with {n} layers")
        self.layers: list[int] = sorted({i % n for i in indices})
        self._recording: Recording | None = None
        self._select: Callable[[mx.array], mx.array] = _last
        self._originals: dict[int, type] = {}
        for i in self.layers:
            layer = self._layers[i]
            if getattr(type(layer), "_capture_owner", None) is not None:
                raise RuntimeError(f"layer {i} already has a capture installed")
            self._originals[i] = type(layer)
            layer.__class__ = _captured_class(type(layer), self, i)

    @property
    def installed(self) -> bool:
        return bool(self._originals)

    @contextmanager
    def recording(self, select: int | Callable[[mx.array], mx.array] | None = None) -> Iterator[Recording]:
        """Record each forward call's output of every captured layer.

        ``select`` picks what is kept from a ``[B, T, D]`` output: ``None`` the
        last position, an int ``k`` the last ``k`` positions, or a function
        returning ``[B, K, D]``."""
        if not self.installed:
            raise RuntimeError("the capture was removed")
        if self._recording is not None:
            raise RuntimeError("a recording is already open")
        rec = Recording(self.layers)
        self._select = _selector(select)
        self._recording = rec
        try:
            yield rec
        finally:
            self._recording = None
            self._select = _last

    def _store(self, index: int, output) -> None:
        h = output[0] if isinstance(output, tuple) else output
        self._recording.steps[index].append(self._select(h))

    def remove(self) -> None:
        """Restore the original layer classes (idempotent)."""
        for i, cls in self._originals.items():
            self._layers[i].__class__ = cls
        self._originals = {}
        self._recording = None

    def __enter__(self) -> "HiddenCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def install_capture(model, layers: Sequence[int] | str = "all") -> HiddenCapture:
    """Make ``layers`` (indices or ``"all"``) of ``model`` recordable."""
    return HiddenCapture(model, layers)


def _last(h: mx.array) -> mx.array:
    return h[:, -1:, :]


def _selector(select) -> Callable[[mx.array], mx.array]:
    if select is None:
        return _last
    if isinstance(select, int):
        if select < 1:
            raise ValueError("select must keep at least one position")
        return lambda h: h[:, -select:, :]
    if callable(select):
        return select
    raise TypeError(f"select must be None, an int or a function, not {type(select).__name__}")


def _captured_class(base: type, capture: HiddenCapture, index: int) -> type:
    def __call__(self, *args, **kwargs):
        out = base.__call__(self, *args, **kwargs)
        if capture._recording is not None:
            capture._store(index, out)
        return out

    return type(base.__name__, (base,), {"__call__": __call__, "_capture_owner": capture, "__module__": base.__module__})


def gather_positions(positions: mx.array) -> Callable[[mx.array], mx.array]:
    """A ``select`` for :meth:`HiddenCapture.recording` keeping, for row ``b``,
    the positions ``positions[b]`` (``[B, K]`` int array); for right-padded
    batches where each row ends at its own index."""
    rows = mx.arange(positions.shape[0])[:, None]
    return lambda h: h[rows, positions]


def tile_prefix(prefix, batch: int) -> list | None:
    """``batch`` rows of a shared prefix's KV cache (a
    :class:`~lazarus_cot_router.decoding.SharedPrefix`), or ``None``."""
    from .decoding import kv_cache, kv_contents

    if prefix is None or not prefix.ids:
        return None
    tiled = []
    for layer in prefix.cache:
        k, v = kv_contents(layer)
        tiled.append(kv_cache(mx.broadcast_to(k, (batch, *k.shape[1:])), mx.broadcast_to(v, (batch, *v.shape[1:]))))
    return tiled


def prefill_hidden(model, capture: HiddenCapture, sequences: Sequence[Sequence[int]], prefix=None, last: int = 1) -> dict[int, mx.array]:
    """One batched forward over ``sequences`` (each continuing ``prefix``),
    right-padded; returns ``{layer: [B, last, D]}``, the outputs of the
    captured layers at each row's own last ``last`` positions.

    Only what the captured layers need is computed (MLX is lazy: the LM head
    and the layers above the deepest captured one never run)."""
    lengths = [len(s) for s in sequences]
    if not lengths or min(lengths) < last:
        raise ValueError(f"every sequence needs at least {last} token(s)")
    width = max(lengths)
    tokens = mx.array([list(s) + [0] * (width - len(s)) for s in sequences])
    positions = mx.array([[n - last + k for k in range(last)] for n in lengths])
    with capture.recording(select=gather_positions(positions)) as rec:
        model(tokens, cache=tile_prefix(prefix, len(lengths)))
    hidden = {i: rec.steps[i][0] for i in capture.layers}
    mx.eval(hidden)
    return hidden
