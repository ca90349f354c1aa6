"""Adapters in mlx-lm's layout, so ``mlx_lm.load(model_dir, adapter_path=DIR)``
and ``mlx_lm.fuse`` use them unchanged.

``DIR/adapters.safetensors`` holds the trainable weights under their full
model names: every weight of the trained blocks for ``fine_tune_type: full``
(mlx-lm loads them with ``load_weights(strict=False)``), the ``lora_a`` /
``lora_b`` matrices for ``lora``. ``DIR/adapter_config.json`` has the keys
mlx-lm reads (``fine_tune_type``, ``num_layers``, ``lora_parameters``) plus
``base_model`` (spec, resolved dir, :func:`lazarus_cot_router.adapters.model_hash`)
so the runtime refuses an adapter on a different base model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from lazarus_cot_router.adapters import (  # noqa: F401  (re-exported: the training side's names)
    ADAPTER_FILE,
    CONFIG_FILE,
    AdapterMismatchError,
    check_base_model,
    model_hash,
    read_adapter_config,
)
from lazarus_cot_router.atomic import atomic_write

from .checkpoint import atomic_save_safetensors


def base_model_identity(spec: str, model_dir: str | os.PathLike) -> dict:
    return {"spec": spec, "path": str(Path(model_dir).resolve()), "hash": model_hash(model_dir)}


def adapter_config(fine_tune_type: str, num_layers: int, lora_parameters: dict | None, base_model: dict | None = None, **extra) -> dict:
    config = {
        "fine_tune_type": fine_tune_type,
        "num_layers": num_layers,
        "lora_parameters": dict(lora_parameters) if fine_tune_type == "lora" else None,
    }
    if base_model is not None:
        config["model"] = base_model["path"]
        config["base_model"] = base_model
    config.update(extra)
    return config


def trainable_weights(model: nn.Module) -> dict[str, mx.array]:
    return dict(tree_flatten(model.trainable_parameters()))


def save_adapter(adapter_dir: str | os.PathLike, model: nn.Module, config: dict) -> Path:
    """Write the model's trainable weights and ``config`` (from
    :func:`adapter_config`) to ``adapter_dir``, each file atomically."""
    adapter_dir = Path(adapter_dir)
    weights = trainable_weights(model)
    if not weights:
        raise ValueError("the model has no trainable weights to save")
    atomic_save_safetensors(adapter_dir / ADAPTER_FILE, weights, {"format": "mlx"})
    atomic_write(adapter_dir / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return adapter_dir


def load_adapter(model: nn.Module, adapter_dir: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> nn.Module:
    """Apply an adapter with mlx-lm's own loader, after the base-model check
    when ``model_dir`` is given."""
    from mlx_lm.tuner.utils import load_adapters

    if model_dir is not None:
        check_base_model(adapter_dir, model_dir)
    return load_adapters(model, str(adapter_dir))
