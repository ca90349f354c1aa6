"""Convert a llama-architecture GGUF file into a standard HF-layout model dir.

``mx.load`` reads GGUF natively: Q4_0/Q4_1/Q8_0 tensors come back as MLX
affine-quantized triples (``X.weight`` uint32, ``X.scales``, ``X.biases``,
group size 32), everything else as float arrays. We dequantize to float32,
rename to HF/mlx-lm names and undo llama.cpp's q/k row permutation, so the
result is a plain HF llama (``rope_traditional=False``) that mlx-lm and
transformers both read. The tokenizer is rebuilt from the GGUF vocab and
merges with the ``tokenizers`` library (byte-level BPE, GPT-2 style).

Errors are raised as ``ValueError`` with a one-line message; ``models``
turns them into ``ModelLoadError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np

GROUP_SIZE = 32  # every GGUF block quantization MLX keeps packed uses 32

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}

# GGUF token_type values (llama.cpp's llama_token_type)
TOKEN_CONTROL, TOKEN_USER_DEFINED = 3, 4


def read_gguf(path: str | Path) -> tuple[dict, dict]:
    """(weights, metadata) of a GGUF file; ValueError if it is not a readable GGUF."""
    path = Path(path)
    try:
        weights, metadata = mx.load(str(path), return_metadata=True)
    except Exception as e:  # MLX raises RuntimeError/ValueError with a long text
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot read GGUF file {path} (corrupt or truncated?): {first}") from None
    arch = metadata.get("general.architecture")
    if arch != "llama":
        raise ValueError(f"unsupported GGUF architecture {arch!r} in {path}: only 'llama' is converted")
    return weights, metadata


def _scalar(metadata: dict, key: str, default=None):
    if key not in metadata:
        if default is None:
            raise ValueError(f"GGUF metadata lacks {key!r}")
        return default
    value = metadata[key]
    return value.item() if isinstance(value, mx.array) else value


def gguf_config(metadata: dict, weights: dict) -> dict:
    """HF ``config.json`` (model_type llama, HF rope layout) from GGUF metadata."""
    n_heads = int(_scalar(metadata, "llama.attention.head_count"))
    hidden = int(_scalar(metadata, "llama.embedding_length"))
    vocab = int(_scalar(metadata, "llama.vocab_size", len(metadata.get("tokenizer.ggml.tokens", []))))
    eps = float(f"{_scalar(metadata, 'llama.attention.layer_norm_rms_epsilon'):.7g}")
    head_dim = hidden // n_heads
    if int(_scalar(metadata, "llama.rope.dimension_count", head_dim)) != head_dim:
        raise ValueError("partial rotary embeddings are not supported")
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(_scalar(metadata, "llama.feed_forward_length")),
        "num_hidden_layers": int(_scalar(metadata, "llama.block_count")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": int(_scalar(metadata, "llama.attention.head_count_kv", n_heads)),
        "head_dim": head_dim,
        "rms_norm_eps": eps,
        "rope_theta": float(_scalar(metadata, "llama.rope.freq_base", 10000.0)),
        "rope_traditional": False,
        "max_position_embeddings": int(_scalar(metadata, "llama.context_length", 2048)),
        "vocab_size": vocab,
        "tie_word_embeddings": "output.weight" not in weights,
        "attention_bias": False,
        "mlp_bias": False,
        "hidden_act": "silu",
        "bos_token_id": int(_scalar(metadata, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_scalar(metadata, "tokenizer.ggml.eos_token_id", 2)),
        "pad_token_id": int(_scalar(metadata, "tokenizer.ggml.padding_token_id", 2)),
        "torch_dtype": "float32",
    }


def permute_qk(w: mx.array, n_heads: int) -> mx.array:
    """llama.cpp's convert permutation: HF rotate-half rows -> interleaved rows."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: mx.array, n_heads: int) -> mx.array:
    """Inverse of ``permute_qk``: GGUF interleaved rows -> HF rotate-half rows."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def dequantize_tensors(weights: dict) -> dict:
    """Float32 tensors by GGUF name, packed triples dequantized."""
    out = {}
    for name, w in weights.items():
        if name.endswith((".scales", ".biases")):
            continue
        base = name[: -len(".weight")] if name.endswith(".weight") else None
        if base is not None and f"{base}.scales" in weights:
            scales, biases = weights[f"{base}.scales"], weights[f"{base}.biases"]
            bits = w.shape[-1] * 32 // (scales.shape[-1] * GROUP_SIZE)
            w = mx.dequantize(w, scales, biases, group_size=GROUP_SIZE, bits=bits)
        out[name] = w.astype(mx.float32)
    return out


def rename_tensors(tensors: dict, config: dict, layout: str = "hf") -> dict:
    """GGUF names -> mlx-lm/HF names; ``layout="hf"`` also un-permutes q/k rows."""
    out = {}
    for name, w in tensors.items():
        parts = name.split(".")
        if parts[0] == "blk" and parts[2] in _LAYER_NAMES:
            key = parts[2]
            if layout == "hf" and key == "attn_q":
                w = unpermute_qk(w, config["num_attention_heads"])
            elif layout == "hf" and key == "attn_k":
                w = unpermute_qk(w, config["num_key_value_heads"])
            new = f"model.layers.{parts[1]}.{_LAYER_NAMES[key]}.{'.'.join(parts[3:])}"
        elif parts[0] in _TOP_NAMES:
            new = f"{_TOP_NAMES[parts[0]]}.{'.'.join(parts[1:])}"
        elif name == "rope_freqs.weight":
            raise ValueError("GGUF with rope_freqs (llama-3 rope scaling) is not supported")
        else:
            raise ValueError(f"unexpected GGUF tensor {name!r}")
        out[new] = w
    return out


def build_model(path: str | Path, layout: str = "hf"):
    """An mlx-lm llama ``(model, config)`` built straight from a GGUF, no cache.

    ``layout="gguf"`` keeps q/k rows as stored and uses interleaved RoPE
    (``rope_traditional=True``): an independent check of the un-permutation.
    """
    from mlx_lm.models import llama

    weights, metadata = read_gguf(path)
    config = gguf_config(metadata, weights)
    if layout == "gguf":
        config = {**config, "rope_traditional": True}
    tensors = rename_tensors(dequantize_tensors(weights), config, layout)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.load_weights(list(tensors.items()), strict=True)
    mx.eval(model.parameters())
    model.eval()
    return model, config


def build_tokenizer(metadata: dict):
    """A ``tokenizers.Tokenizer`` (byte-level BPE) from GGUF vocab and merges."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    if _scalar(metadata, "tokenizer.ggml.model", "gpt2") != "gpt2":
        raise ValueError("only byte-level BPE ('gpt2') GGUF tokenizers are supported")
    tokens = list(metadata["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in metadata["tokenizer.ggml.merges"]]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("GGUF vocabulary has duplicate tokens")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    # llama.cpp's 'smollm'/'starcoder' pre-tokenizers split digits one by one first
    if _scalar(metadata, "tokenizer.ggml.pre", "gpt2") in ("smollm", "starcoder", "refact"):
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    types = np.array(metadata.get("tokenizer.ggml.token_type", mx.zeros(0)))
    special = [i for i, t in enumerate(types) if t in (TOKEN_CONTROL, TOKEN_USER_DEFINED)]
    tok.add_special_tokens(
        [AddedToken(tokens[i], special=types[i] == TOKEN_CONTROL, normalized=False) for i in special]
    )
    return tok


def save_tokenizer(metadata: dict, out_dir: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    tok = build_tokenizer(metadata)
    tok.save(str(out_dir / "tokenizer.json"))
    tokens = metadata["tokenizer.ggml.tokens"]

    def name(key, default):
        return tokens[int(_scalar(metadata, key, default))]

    bos = name("tokenizer.ggml.bos_token_id", 1)
    eos = name("tokenizer.ggml.eos_token_id", 2)
    pad = name("tokenizer.ggml.padding_token_id", int(_scalar(metadata, "tokenizer.ggml.eos_token_id", 2)))
    unk = name("tokenizer.ggml.unknown_token_id", 0)
    specials = {"bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk}
    config = {
        # the tokenizers-backed class that uses tokenizer.json exactly as written
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        # as SmolLM2-Instruct's own config; the other control tokens are
        # special added tokens in tokenizer.json
        "additional_special_tokens": list(dict.fromkeys([bos, eos])),
        "add_bos_token": bool(_scalar(metadata, "tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(_scalar(metadata, "llama.context_length", 2048)),
    }
    if "tokenizer.chat_template" in metadata:
        config["chat_template"] = metadata["tokenizer.chat_template"]
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    special_map = {**specials, "additional_special_tokens": config["additional_special_tokens"]}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2, ensure_ascii=False))


def convert_gguf(path: str | Path, out_dir: str | Path) -> dict:
    """Write config.json, model.safetensors (float32, HF layout) and tokenizer files."""
    out_dir = Path(out_dir)
    weights, metadata = read_gguf(path)
    config = gguf_config(metadata, weights)
    tensors = rename_tensors(dequantize_tensors(weights), config, "hf")
    mx.eval(tensors)
    out_dir.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out_dir / "model.safetensors"), tensors, metadata={"format": "mlx"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    gen = {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}
    (out_dir / "generation_config.json").write_text(json.dumps(gen, indent=2))
    save_tokenizer(metadata, out_dir)
    return config
