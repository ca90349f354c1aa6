"""What a query goes through before the model sees it.

- Non-text input becomes an empty query (the rewriter then passes through).
- Control characters (NUL and the like) become spaces; newlines and tabs stay.
- Lone UTF-16 surrogates (not encodable as UTF-8) become U+FFFD.
- Text that the tokenizer would read as a special token (``<|im_start|>``,
  ``</s>``, ...) is broken up so a user cannot open a turn of their own.
- Queries longer than :data:`MAX_QUERY_CHARS` are truncated; the returned note
  says so and ends up in the action's ``reasoning``.
- With a tokenizer, queries longer than :data:`MAX_QUERY_TOKENS` tokens are
  truncated too: 2,000 characters can be 8,000 byte-level tokens (4-byte
  characters), whose prefill takes minutes on a CPU.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

MAX_QUERY_CHARS = 2000
MAX_QUERY_TOKENS = 512

_SPECIAL_LIKE = re.compile(r"<\|[^<>\s]{0,64}\|>")
_ZERO_WIDTH_JOINER = "\u200c"


def special_token_texts(tokenizer) -> list[str]:
    """Every string the tokenizer maps to a special or added token."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or [])
    added = getattr(tokenizer, "get_added_vocab", None)
    if callable(added):
        try:
            texts.update(added().keys())
        except Exception:  # tokenizers without an added vocabulary
            pass
    return sorted((t for t in texts if t and len(t) > 1), key=len, reverse=True)


def _defuse(token_text: str) -> str:
    return token_text[0] + _ZERO_WIDTH_JOINER + token_text[1:]


def _without_lone_surrogates(text: str) -> str:
    """Join surrogate pairs into their character and replace lone surrogates
    with U+FFFD: the tokenizer only accepts text that encodes as UTF-8."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class SanitizedQuery(NamedTuple):
    query: str
    note: str  # empty unless something the caller should know about happened
    truncated: bool  # the query was cut to the character or token limit


def sanitize_query(
    query: object, tokenizer=None, max_chars: int = MAX_QUERY_CHARS, max_tokens: int = MAX_QUERY_TOKENS
) -> SanitizedQuery:
    """The query made safe to prompt with, a note on what was done to it, and
    whether it had to be truncated."""
    if not isinstance(query, str):
        return SanitizedQuery("", f"query was {type(query).__name__}, not text", False)
    notes = []
    truncated = False
    if len(query) > max_chars:
        notes.append(f"query truncated from {len(query)} to {max_chars} characters")
        query, truncated = query[:max_chars], True
    if any("\ud800" <= ch <= "\udfff" for ch in query):
        query = _without_lone_surrogates(query)
    query = "".join(
        " " if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch for ch in query
    )
    query = _SPECIAL_LIKE.sub(lambda m: _defuse(m.group(0)), query)
    if tokenizer is not None:
        for text in special_token_texts(tokenizer):
            if text in query:
                query = query.replace(text, _defuse(text))
        ids = tokenizer.encode(query, add_special_tokens=False)
        if len(ids) > max_tokens:
            notes.append(f"query truncated from {len(ids)} to {max_tokens} tokens")
            query, truncated = tokenizer.decode(ids[:max_tokens]), True
    return SanitizedQuery(query.strip(), "; ".join(notes), truncated)
