"""Shared fixtures: the embedded model, a tiny random llama dir, fast BLAS.

The embedded model is converted once into the normal cache dir
(``$LAZARUS_COT_ROUTER_CACHE`` or ``~/.cache/lazarus-cot-router``) and reused
by later runs. A plain ``python -m pytest`` on Linux/CPU re-executes itself
once with OpenBLAS preloaded (see ``lazarus_cot_router.blas``; set
``LAZARUS_COT_ROUTER_NO_REEXEC=1`` to keep the reference BLAS).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _is_pytest_command() -> bool:
    arg0 = sys.argv[0] if sys.argv else ""
    return "pytest" in os.path.basename(arg0) or os.path.basename(os.path.dirname(arg0)) == "pytest"


def pytest_configure(config):
    if hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER") or not _is_pytest_command():
        return
    from lazarus_cot_router import blas

    if blas.fast_blas_to_preload() is None:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:  # give the real stdout/stderr back before exec
        capman.stop_global_capturing()
    blas.reexec_with_fast_blas()


def pytest_report_header(config):
    from lazarus_cot_router import blas

    return f"BLAS: {blas.blas_in_use()}"


def import_lazarus_or_skip():
    """``chuk_lazarus.inference.virtual_experts``, or skip the calling test module
    where chuk-lazarus cannot be imported (the main venv: it pins huggingface-hub
    < 0.24). ``scripts/test-lazarus.sh`` sets LAZARUS_COT_ROUTER_REQUIRE_LAZARUS=1,
    which turns the skip into a failure."""
    try:
        import chuk_lazarus.inference.virtual_experts as virtual_experts
    except ImportError as error:
        if os.environ.get("LAZARUS_COT_ROUTER_REQUIRE_LAZARUS") == "1":
            raise
        pytest.skip(f"chuk-lazarus is not installed here ({error}): its huggingface-hub<0.24 pin holds mlx-lm "
                    "below the newest, so `make test` runs these tests in .venv-lazarus (scripts/test-lazarus.sh)",
                    allow_module_level=True)
    return virtual_experts


def fixed_clock() -> datetime:
    """The clock of the Lazarus tests: 2025-01-15 12:00 UTC."""
    return datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc)


def subprocess_env(**extra) -> dict:
    """Environment for running the package in a subprocess from the repo root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """The converted embedded model dir (converted on first use)."""
    from lazarus_cot_router.models import resolve_model_dir

    return resolve_model_dir("embedded")


@pytest.fixture(scope="session")
def embedded_model(embedded_dir):
    """``(model, tokenizer)`` of the embedded SmolLM2-135M-Instruct, float32."""
    from lazarus_cot_router.models import load

    return load("embedded")


def write_tiny_model(out_dir: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer, 64-wide llama dir with a real tokenizer (for fast tests)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    vocab = json.loads((tokenizer_dir / "config.json").read_text())["vocab_size"]
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "vocab_size": vocab,
        "tie_word_embeddings": True,
        "max_position_embeddings": 2048,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    out_dir.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out_dir / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, out_dir / name)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_dir) -> Path:
    """Path of a tiny random llama model dir loadable by mlx_lm.load and models.load."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"), embedded_dir)
