"""Atomic, resumable checkpoints.

A checkpoint is one ``checkpoint.safetensors`` in the run dir holding the
trainable weights (``model.<name>``), the optimizer state
(``optimizer.<name>``, from ``tree_flatten(optimizer.state)``), MLX's RNG key,
any arrays the caller adds (a moving average of the weights: ``ema.<name>``),
and in the safetensors metadata the caller's JSON ``state`` (phase, step, data
order, ...) plus Python's ``random`` state. It is written to a temporary file in
the same directory, fsynced, then ``os.replace``d over the old one, so a
``kill -9`` at any moment leaves either the previous or the new checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map_with_path

from lazarus_cot_router.atomic import atomic_path

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "lazarus-cot-router-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file."""


def atomic_save_safetensors(path: str | os.PathLike, arrays: dict[str, mx.array], metadata: dict[str, str] | None = None) -> None:
    """``mx.save_safetensors`` through :func:`lazarus_cot_router.atomic.atomic_path`."""
    with atomic_path(path, suffix=".safetensors") as tmp:
        mx.save_safetensors(str(tmp), arrays, metadata=metadata or {})


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def _fresh_hint(path: Path) -> str:
    return f"delete {path} (or use another --out) and start fresh without --resume"


def read_header(path: str | os.PathLike) -> dict:
    """The safetensors header of ``path``, after checking the file holds every
    byte the header promises (a truncated file raises :class:`CheckpointError`)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fid:
            raw = fid.read(8)
            if len(raw) < 8:
                raise CheckpointError(f"checkpoint {path} is truncated ({size} bytes); {_fresh_hint(path)}")
            (length,) = struct.unpack("<Q", raw)
            if length > size - 8:
                raise CheckpointError(f"checkpoint {path} is truncated or corrupt (bad header length); {_fresh_hint(path)}")
            header = json.loads(fid.read(length))
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt (unreadable header); {_fresh_hint(path)}") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {path} is corrupt (unreadable header); {_fresh_hint(path)}")
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end != size:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({size} bytes, header promises {8 + length + end}); {_fresh_hint(path)}"
        )
    return header


def read_state(run_dir: str | os.PathLike) -> dict | None:
    """The JSON state stored in the run's checkpoint, without loading tensors;
    ``None`` when there is no checkpoint."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None
    meta = read_header(path).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a lazarus-cot-router checkpoint (format {meta.get('format')!r}); {_fresh_hint(path)}")
    try:
        return json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} has a corrupt state record; {_fresh_hint(path)}") from e


def save_checkpoint(run_dir: str | os.PathLike, model: nn.Module, optimizer: optim.Optimizer, state: dict,
                    extra: dict[str, mx.array] | None = None) -> Path:
    """Atomically write the trainable weights, ``optimizer.state``, the RNG
    states, the JSON-serializable ``state`` and the caller's ``extra`` arrays
    (their keys must not start with ``model.``, ``optimizer.`` or ``rng.``;
    :func:`load_extra` reads them back) to ``run_dir``."""
    arrays = dict(extra or {})
    if any(k.startswith(("model.", "optimizer.", "rng.")) for k in arrays):
        raise ValueError("extra checkpoint arrays may not use the model., optimizer. or rng. prefixes")
    arrays.update({f"model.{k}": v for k, v in tree_flatten(model.trainable_parameters())})
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    arrays["rng.mlx"] = mx.random.state[0]
    version, internal, gauss = random.getstate()
    metadata = {
        "format": FORMAT,
        "state": json.dumps(state),
        "python_random": json.dumps([version, list(internal), gauss]),
    }
    path = checkpoint_path(run_dir)
    atomic_save_safetensors(path, arrays, metadata)
    return path


def load_extra(run_dir: str | os.PathLike, prefix: str) -> dict[str, mx.array]:
    """The arrays saved as :func:`save_checkpoint`'s ``extra`` whose keys start with
    ``prefix`` (none when the run has no checkpoint)."""
    path = checkpoint_path(run_dir)
    if read_state(run_dir) is None:
        return {}
    try:
        arrays = mx.load(str(path))
    except Exception as e:
        raise CheckpointError(f"cannot load checkpoint {path}: {e}; {_fresh_hint(path)}") from e
    return {k: v for k, v in arrays.items() if k.startswith(prefix)}


def load_checkpoint(run_dir: str | os.PathLike, model: nn.Module, optimizer: optim.Optimizer | None) -> dict | None:
    """Restore what :func:`save_checkpoint` wrote into ``model`` (already set
    up with the same trainable layers) and ``optimizer``, and the RNG states.
    Returns the saved ``state``, or ``None`` when there is no checkpoint."""
    state = read_state(run_dir)
    if state is None:
        return None
    path = checkpoint_path(run_dir)
    try:
        arrays, meta = mx.load(str(path), return_metadata=True)
    except Exception as e:
        raise CheckpointError(f"cannot load checkpoint {path}: {e}; {_fresh_hint(path)}") from e
    weights = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    expected = dict(tree_flatten(model.trainable_parameters()))
    if set(weights) != set(expected) or any(weights[k].shape != v.shape for k, v in expected.items()):
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise CheckpointError(
            f"checkpoint {path} does not match the model's trainable weights "
            f"(missing {missing[:3]}, unexpected {extra[:3]}, or shapes differ): was it written with another "
            f"model, fine_tune_type or num_layers? {_fresh_hint(path)}"
        )
    model.load_weights(list(weights.items()), strict=False)
    if optimizer is not None:
        saved = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        optimizer.init(model.trainable_parameters())

        def restore(name, current):
            if name not in saved or saved[name].shape != current.shape:
                raise CheckpointError(f"checkpoint {path} lacks optimizer state {name!r} for this model; {_fresh_hint(path)}")
            return saved[name]

        optimizer.state = tree_map_with_path(restore, optimizer.state)
    if "rng.mlx" in arrays:
        hi, lo = arrays["rng.mlx"].tolist()
        mx.random.seed((hi << 32) | lo)
    if "python_random" in meta:
        version, internal, gauss = json.loads(meta["python_random"])
        random.setstate((version, tuple(internal), gauss))
    mx.eval(model.parameters(), optimizer.state if optimizer is not None else [])
    return state
