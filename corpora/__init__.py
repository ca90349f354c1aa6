"""Public corpora, vendored with their licences (see ``corpora/SOURCES.md``).

- :mod:`corpora.mawps`: MAWPS + ASDiv-A word problems, for training (``train``)
  and a development split (``dev``) carved by a stable hash of the query.
- :mod:`corpora.svamp`: the SVAMP challenge set, for evaluation only; nothing
  here mixes it into training data.
- ``corpora.clinc150``: CLINC150 intents (its own converter).
- :mod:`corpora.gsm8k`: GSM8K's train split, word problems for training only.
- :mod:`corpora.mathematics`: DeepMind mathematics_dataset questions: its test split for
  evaluation, its train split for training (``train``) and a development split (``dev``).

The data ship inside the package (``corpora/data/...``) and are read with
:mod:`importlib.resources`, so an installed copy needs no repository checkout.
"""

from __future__ import annotations

import functools
import json
from importlib import resources


def data_text(*parts: str) -> str:
    """The text of the vendored file ``corpora/data/<parts...>`` (UTF-8)."""
    return resources.files(__name__).joinpath("data", *parts).read_text(encoding="utf-8")


def data_jsonl(*parts: str) -> tuple[dict, ...]:
    """The records of the vendored JSON Lines file ``corpora/data/<parts...>``, in file order."""
    return tuple(json.loads(line) for line in data_text(*parts).splitlines() if line.strip())


@functools.lru_cache(maxsize=1)
def builtin_experts() -> dict:
    """The built-in experts by name, built once: the converters label and check specs with them."""
    from lazarus_cot_router.experts.builtin import default_experts

    return {expert.name: expert for expert in default_experts()}
