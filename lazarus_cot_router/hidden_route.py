"""Read the route from hidden states (the seed's H3).

:class:`HiddenRouter` scores a hidden state, captured by :mod:`.hidden`, against
one direction per expert: ``score = hidden . direction * scale + bias``, a logit
that is positive when the projection is above the expert's threshold. It routes
to the argmax expert when that score is positive, and to passthrough (``None``)
otherwise. A calibration is bound to the model and adapter it was fitted on
(:func:`model_identity`) and refused on any other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import numpy as np
import yaml

from .adapters import model_hash
from .atomic import atomic_path, atomic_write
from .hidden import POSITIONS, HiddenCapture, prefill_hidden

CALIBRATION_FILE = "calibration.yaml"
DIRECTIONS_FILE = "directions.safetensors"
FORMAT_VERSION = 1


class CalibrationError(ValueError):
    """A calibration directory that is missing, unreadable or inconsistent."""


class IdentityMismatchError(CalibrationError):
    """A calibration fitted on another model or adapter than the one in use."""


def hash_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def adapter_file(adapter_path: str | os.PathLike) -> Path:
    path = Path(adapter_path)
    return path / "adapters.safetensors" if path.is_dir() else path


def model_identity(spec: str, adapter_path: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None) -> dict:
    """What a calibration is bound to: the model spec and its
    :func:`~lazarus_cot_router.adapters.model_hash` (the identity adapters record
    too), the adapter path and a hash of its weight file. ``model_dir`` defaults
    to the directory :func:`lazarus_cot_router.models.resolve_model_dir` gives
    for ``spec``."""
    if model_dir is None:
        from .models import resolve_model_dir

        model_dir = resolve_model_dir(spec)
    if not any(Path(model_dir).glob("*.safetensors")):
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    identity = {"model": str(spec), "model_hash": model_hash(model_dir)}
    if adapter_path is None:
        identity.update(adapter=None, adapter_sha256=None)
    else:
        file = adapter_file(adapter_path)
        if not file.is_file():
            raise FileNotFoundError(f"adapter weights not found: {file}")
        identity.update(adapter=str(adapter_path), adapter_sha256=hash_file(file))
    return identity


def check_identity(stored: dict, current: dict, where: str = "") -> None:
    """Raise :class:`IdentityMismatchError` unless ``current`` names the same
    model weights and adapter as ``stored`` (hashes win over names)."""
    problems = []
    if "model_hash" not in stored and "model_sha256" in stored:
        problems.append("written by an older version, which identified the model another way")
    elif stored.get("model_hash") and current.get("model_hash"):
        if stored["model_hash"] != current["model_hash"]:
            problems.append(
                f"model weights differ (calibrated on {stored.get('model')!r} hash {stored['model_hash']}, "
                f"now {current.get('model')!r} hash {current['model_hash']})"
            )
    elif stored.get("model") != current.get("model"):
        problems.append(f"model differs (calibrated on {stored.get('model')!r}, now {current.get('model')!r})")
    if bool(stored.get("adapter_sha256")) != bool(current.get("adapter_sha256")):
        problems.append(
            f"adapter differs (calibrated with {stored.get('adapter') or 'no adapter'}, "
            f"now {current.get('adapter') or 'no adapter'})"
        )
    elif stored.get("adapter_sha256") != current.get("adapter_sha256"):
        problems.append(
            f"adapter weights differ (calibrated with {stored.get('adapter')!r} sha256 {stored['adapter_sha256'][:12]}, "
            f"now {current.get('adapter')!r} sha256 {current['adapter_sha256'][:12]})"
        )
    if problems:
        raise IdentityMismatchError(
            f"calibration {where} does not match the model in use: " + "; ".join(problems) + ". Rerun `lazarus-cot-router calibrate`."
        )


@dataclass
class HiddenRouter:
    """Expert directions read at one layer and position."""

    experts: list[str]
    directions: np.ndarray
    scales: np.ndarray
    biases: np.ndarray
    thresholds: np.ndarray
    layer: int
    position: str = "prompt_last"
    identity: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def __post_init__(self):
        self.experts = list(self.experts)
        self.directions = np.asarray(self.directions, dtype=np.float32)
        self.scales, self.biases, self.thresholds = (
            np.asarray(a, dtype=np.float32).reshape(-1) for a in (self.scales, self.biases, self.thresholds)
        )
        e = len(self.experts)
        if self.directions.ndim != 2 or self.directions.shape[0] != e:
            raise CalibrationError(f"directions must be [{e}, D], got {list(self.directions.shape)}")
        for name in ("scales", "biases", "thresholds"):
            if getattr(self, name).shape != (e,):
                raise CalibrationError(f"{name} must have one value per expert ({e})")
        if self.position not in POSITIONS:
            raise CalibrationError(f"position must be one of {POSITIONS}, got {self.position!r}")

    @property
    def dim(self) -> int:
        return self.directions.shape[1]

    def logits(self, hidden) -> np.ndarray:
        """Scaled projections ``[..., E]`` of hidden states ``[..., D]``."""
        h = np.asarray(hidden.astype(mx.float32) if isinstance(hidden, mx.array) else hidden, dtype=np.float32)
        if h.shape[-1] != self.dim:
            raise ValueError(f"hidden size {h.shape[-1]} does not match the calibration ({self.dim})")
        return (h @ self.directions.T) * self.scales + self.biases

    def project(self, hidden) -> dict[str, float]:
        """``{expert: scaled projection}`` for one hidden state."""
        scores = self.logits(hidden).reshape(-1, len(self.experts))
        if scores.shape[0] != 1:
            raise ValueError("project takes one hidden state; use logits for a batch")
        return {name: float(s) for name, s in zip(self.experts, scores[0])}

    def route(self, hidden) -> tuple[str | None, dict[str, float]]:
        """The argmax expert if its score is positive, else ``None``."""
        scores = self.project(hidden)
        best = max(scores, key=scores.get)
        return (best if scores[best] > 0 else None), scores

    def route_prompts(self, model, capture: HiddenCapture, suffixes, prefix=None, first_tokens=None) -> list[tuple[str | None, dict[str, float]]]:
        """Route a batch of prompts (the parts after the shared ``prefix``) with
        one forward up to :attr:`layer`. At ``expert_token`` the first token of
        each routing line (``first_tokens``, e.g. the generated one) is appended."""
        if self.layer not in capture.layers:
            raise ValueError(f"the capture does not record layer {self.layer}")
        rows = [list(s) for s in suffixes]
        if self.position == "expert_token":
            if first_tokens is None or len(first_tokens) != len(rows):
                raise ValueError("routing at expert_token needs the first token of every routing line")
            rows = [r + [int(t)] for r, t in zip(rows, first_tokens)]
        hidden = prefill_hidden(model, capture, rows, prefix=prefix)[self.layer][:, -1, :]
        scores = self.logits(hidden)
        out = []
        for row in scores:
            j = int(row.argmax())
            out.append((self.experts[j] if row[j] > 0 else None, dict(zip(self.experts, map(float, row)))))
        return out

    def to_virtual_router_fields(self) -> dict:
        """Lazarus ``VirtualRouter`` fields, in expert order."""
        return {
            "experts": list(self.experts),
            "layer": self.layer,
            "directions": self.directions.copy(),
            "scales": self.scales.copy(),
            "biases": self.biases.copy(),
            "thresholds": self.thresholds.copy(),
        }

    def save(self, out_dir: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {name: self.directions[i].copy() for i, name in enumerate(self.experts)}
        tensors.update(
            {"__directions__": self.directions, "__scales__": self.scales, "__biases__": self.biases, "__thresholds__": self.thresholds}
        )
        with atomic_path(out / DIRECTIONS_FILE, suffix=".safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"format": "lazarus-cot-router"})
        meta = {
            "version": FORMAT_VERSION,
            "layer": int(self.layer),
            "position": self.position,
            "experts": list(self.experts),
            "hidden_size": int(self.dim),
            "scales": {n: float(v) for n, v in zip(self.experts, self.scales)},
            "biases": {n: float(v) for n, v in zip(self.experts, self.biases)},
            "thresholds": {n: float(v) for n, v in zip(self.experts, self.thresholds)},
            "identity": dict(self.identity),
            "metrics": _plain(self.metrics),
        }
        text = yaml.safe_dump(meta, sort_keys=False)
        atomic_write(out / CALIBRATION_FILE, text)
        return out

    @classmethod
    def load(cls, calib_dir: str | os.PathLike, model_identity: dict | None = None) -> "HiddenRouter":
        """Read a calibration; with ``model_identity`` (see :func:`model_identity`)
        refuse one fitted on other weights or another adapter."""
        from safetensors.numpy import load_file

        path = Path(calib_dir)
        meta_path, dir_path = path / CALIBRATION_FILE, path / DIRECTIONS_FILE
        for p in (meta_path, dir_path):
            if not p.is_file():
                raise CalibrationError(f"{p} not found; run `lazarus-cot-router calibrate` first")
        try:
            meta = yaml.safe_load(meta_path.read_text())
        except yaml.YAMLError as e:
            raise CalibrationError(f"{meta_path} is not valid YAML: {e}") from None
        if not isinstance(meta, dict):
            raise CalibrationError(f"{meta_path} is not a calibration (expected a mapping)")
        missing = [k for k in ("version", "layer", "position", "experts", "scales", "biases", "thresholds", "identity") if k not in meta]
        if missing:
            raise CalibrationError(f"{meta_path} lacks {', '.join(missing)}")
        if meta["version"] != FORMAT_VERSION:
            raise CalibrationError(f"{meta_path} has format version {meta['version']!r}, expected {FORMAT_VERSION}")
        if model_identity is not None:
            check_identity(meta["identity"] or {}, model_identity, where=str(path))
        try:
            tensors = load_file(str(dir_path))
        except Exception as e:
            raise CalibrationError(f"{dir_path} is not readable: {e}") from None
        experts = meta["experts"]
        try:
            directions = np.stack([tensors[name] for name in experts])
            vals = {k: [float(meta[k][name]) for name in experts] for k in ("scales", "biases", "thresholds")}
            return cls(
                experts=experts,
                directions=directions,
                layer=int(meta["layer"]),
                position=meta["position"],
                identity=meta["identity"] or {},
                metrics=meta.get("metrics") or {},
                **vals,
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CalibrationError):
                raise
            raise CalibrationError(f"calibration in {path} is inconsistent: {type(e).__name__}: {e}") from None


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
