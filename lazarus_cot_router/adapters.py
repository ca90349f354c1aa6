"""Reading adapters in mlx-lm's layout at run time, and the one identity of a
base model that adapters and calibrations are bound to.

``DIR/adapters.safetensors`` holds the trained weights, ``DIR/adapter_config.json``
the keys mlx-lm reads plus ``base_model`` (spec, resolved dir, :func:`model_hash`);
``training.adapters`` writes them. An adapter recorded on another base model is
refused by :func:`check_base_model`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ADAPTER_FILE = "adapters.safetensors"
CONFIG_FILE = "adapter_config.json"
_HASH_BYTES = 1 << 20


class AdapterMismatchError(ValueError):
    """An adapter trained on another base model than the one given."""


def model_hash(model_dir: str | os.PathLike) -> str:
    """The identity of a model dir: a hash of its ``config.json`` and, for each
    safetensors file, its name, size and first and last MiB (reading all the
    weights would cost seconds on every load)."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    config = model_dir / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for path in sorted(model_dir.glob("*.safetensors")):
        size = path.stat().st_size
        h.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as fid:
            h.update(fid.read(_HASH_BYTES))
            fid.seek(max(0, size - _HASH_BYTES))
            h.update(fid.read(_HASH_BYTES))
    return h.hexdigest()[:16]


def read_adapter_config(adapter_dir: str | os.PathLike) -> dict:
    path = Path(adapter_dir) / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise FileNotFoundError(f"{adapter_dir} is not an adapter dir: cannot read {path.name}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def adapter_query_layout(adapter_dir: str | os.PathLike | None) -> str:
    """How the adapter's model was shown queries in training (``query_layout`` in its
    ``adapter_config.json``; ``as_written`` for no adapter and adapters that do not say)."""
    from .prompts import QUERY_LAYOUTS

    if adapter_dir is None:
        return "as_written"
    layout = read_adapter_config(adapter_dir).get("query_layout", "as_written")
    if layout not in QUERY_LAYOUTS:
        raise ValueError(f"adapter {adapter_dir} was trained with query layout {layout!r}, which this version "
                         f"does not know ({', '.join(QUERY_LAYOUTS)})")
    return layout


def check_base_model(adapter_dir: str | os.PathLike, model_dir: str | os.PathLike) -> None:
    """Raise :class:`AdapterMismatchError` if the adapter records a base model
    whose :func:`model_hash` differs from ``model_dir``'s."""
    recorded = read_adapter_config(adapter_dir).get("base_model")
    if not recorded or not recorded.get("hash"):
        return
    actual = model_hash(model_dir)
    if recorded["hash"] != actual:
        raise AdapterMismatchError(
            f"adapter {adapter_dir} was trained on {recorded.get('spec')!r} ({recorded.get('path')}, hash "
            f"{recorded['hash']}) but the base model {model_dir} has hash {actual}"
        )
