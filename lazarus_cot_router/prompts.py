"""The router's prompt: system message, chat template, and training target.

Training and inference build token ids through the same functions here, so the
model is always asked exactly as it was trained.
"""

from __future__ import annotations

import re
from typing import Sequence

from .experts.base import Expert
from .experts.vocabulary import normalize_numbers
from .grammar import render_line

_QUERY_SLOT = "\x00QUERY\x00"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
QUERY_LAYOUTS = ("as_written", "question_first", "question_moved")


def router_system_prompt(experts: Sequence[Expert]) -> str:
    """The seed's kind of system prompt: the format, the expert list, examples."""
    lines = [
        "You are a routing assistant. Convert the user query to one expert line.",
        "Format: EXPERT: SPEC ->",
        "Experts: " + ", ".join(e.name for e in experts),
        "Examples:",
    ]
    for expert in experts:
        if expert.system_prompt_example is not None:
            query, spec = expert.system_prompt_example
            lines.append(f'- "{query}" -> {render_line(expert.name, spec)}')
    return "\n".join(lines)


def target_text(expert: str, spec: str) -> str:
    """What the model is trained to write (the expert writes the result)."""
    return render_line(expert, spec)


def _render(tokenizer, system: str, query: str) -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": query}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def lay_out_query(query: str, layout: str = "as_written") -> str:
    """The query as the model reads it. A query of one sentence is always read as written. Of two
    or more, ``question_first`` writes the last sentence (a word problem's question) on a line
    before the whole query, and ``question_moved`` moves it there: a causal model then reads the
    problem's numbers knowing what is asked. Constraints and experts read the query as written."""
    if layout not in QUERY_LAYOUTS:
        raise ValueError(f"query layout must be one of {', '.join(QUERY_LAYOUTS)}, not {layout!r}")
    if layout == "as_written":
        return query
    sentences = [s for s in _SENTENCE_END.split(query.strip()) if s]
    if len(sentences) < 2:
        return query
    rest = query if layout == "question_first" else " ".join(sentences[:-1])
    return f"{sentences[-1]}\n{rest}"


def encode_prompt(tokenizer, system: str, query: str, layout: str = "as_written") -> tuple[list[int], list[int]]:
    """Token ids of the chat-templated prompt, split into the part shared by
    every query (system message and the start of the user turn) and the part
    that depends on the query, laid out as ``layout`` says (:func:`lay_out_query`).
    ``prefix + suffix`` is the full prompt. The query's numbers are
    written as a spec copies them ("54,788" is 54788, :func:`normalize_numbers`): no training query
    writes a thousands separator, and shown one the router copies the comma, which no grammar takes."""
    text = _render(tokenizer, system, _QUERY_SLOT)
    head, sep, tail = text.partition(_QUERY_SLOT)
    if not sep:
        raise ValueError("the chat template dropped the user message")
    prefix = tokenizer.encode(head, add_special_tokens=False)
    suffix = tokenizer.encode(lay_out_query(normalize_numbers(query), layout) + tail, add_special_tokens=False)
    bos = getattr(tokenizer, "bos_token_id", None)
    if _template_adds_bos(tokenizer) and bos is not None and (not prefix or prefix[0] != bos):
        prefix = [bos] + prefix
    return prefix, suffix


def _template_adds_bos(tokenizer) -> bool:
    # Llama-style templates put the BOS text in the template itself; encoding
    # the rendered text with add_special_tokens=False keeps it. Tokenizers that
    # want a BOS but whose template lacks it get one here.
    return bool(getattr(tokenizer, "add_bos_token", False))


def encode_target(tokenizer, expert: str, spec: str) -> list[int]:
    """Ids of the assistant's answer followed by the end-of-turn token."""
    ids = tokenizer.encode(target_text(expert, spec), add_special_tokens=False)
    return ids + [end_of_turn_id(tokenizer)]


def end_of_turn_id(tokenizer) -> int:
    """The token that closes the assistant's turn in this chat template."""
    eos = getattr(tokenizer, "eos_token_id", None)
    for token in ("<|im_end|>", "<|eot_id|>", "</s>", "<|end|>"):
        ids = tokenizer.convert_tokens_to_ids(token) if hasattr(tokenizer, "convert_tokens_to_ids") else None
        if isinstance(ids, int) and ids != getattr(tokenizer, "unk_token_id", None):
            return ids
    if eos is None:
        raise ValueError("the tokenizer has no end-of-turn or EOS token")
    return eos
