"""``lazarus-cot-router generate``: chat-templated greedy generation."""

from __future__ import annotations

import argparse
import sys


def chat_prompt(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of a one-turn chat, ending with the assistant header."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True)


def stream_text(model, tokenizer, prompt: str, system: str | None = None, max_tokens: int = 256):
    """Yield mlx-lm ``GenerationResponse``s of greedy decoding (last one has the stats)."""
    from mlx_lm import stream_generate

    ids = chat_prompt(tokenizer, prompt, system)
    yield from stream_generate(model, tokenizer, ids, max_tokens=max_tokens)


def generate_text(model, tokenizer, prompt: str, system: str | None = None, max_tokens: int = 256) -> str:
    """Greedy reply to ``prompt``, stopping at the model's end-of-turn token."""
    return "".join(r.text for r in stream_text(model, tokenizer, prompt, system, max_tokens))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lazarus-cot-router generate", description=__doc__)
    p.add_argument("prompt", help="the user message")
    p.add_argument("--model", default="embedded", help="model SPEC: embedded, a dir, a .gguf or an HF id")
    p.add_argument("--adapter", default=None, help="mlx-lm adapter dir (adapters.safetensors + adapter_config.json)")
    p.add_argument("--system", default=None, help="system message (default: the chat template's)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--dtype", default="auto", help="auto, native, float32, bfloat16 or float16")
    p.add_argument("--verbose", action="store_true", help="print token counts and speed on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    from .models import ModelLoadError, load

    args = build_parser().parse_args(argv)
    try:
        model, tokenizer = load(args.model, adapter_path=args.adapter, dtype=args.dtype)
    except ModelLoadError as e:
        print(f"lazarus-cot-router generate: {e}", file=sys.stderr)
        return 1
    last = None
    for last in stream_text(model, tokenizer, args.prompt, args.system, args.max_tokens):
        print(last.text, end="", flush=True)
    print()
    if args.verbose and last is not None:
        print(
            f"prompt: {last.prompt_tokens} tokens, {last.prompt_tps:.1f} tok/s; "
            f"generation: {last.generation_tokens} tokens, {last.generation_tps:.1f} tok/s",
            file=sys.stderr,
        )
    return 0
