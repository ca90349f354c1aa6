"""Evaluation suites: the own held-out split, the acceptance cases, public benchmarks.

``lazarus-cot-router eval --suite NAME`` scores a router on one of them (or ``all``):

* ``heldout``: the generated held-out split (templates, entities, instructions
  and number ranges the training split never uses);
* ``robustness``: the seed's public acceptance cases (a floor, not a measure);
* ``svamp``: the 1,000 SVAMP problems (Patel et al., 2021), never trained on;
  a problem counts when it reaches ``word_problem`` and executes to its answer;
* ``clinc150``: the CLINC150 test split (4,500 in-scope + 1,000 out-of-scope
  queries, Larson et al., 2019), mapped as ``corpora.clinc150`` documents;
  reported per kind, with the share of other-intent and out-of-scope queries an
  expert takes (the false-positive rate a host cares about);
* ``mathematics``: 898 questions of DeepMind's mathematics_dataset test split
  (Saxton et al., 2019), as ``corpora.mathematics`` maps them: one binary operation
  for an arithmetic expert (kinds ``add_or_sub``, ``mul``, ``div``), or a numeric
  question no expert answers, which stays chat (kind ``other``).

Recipes and rules are tuned on the development sets only (``mawps-dev``,
``clinc150-val``, ``mathematics-dev``: the part of mathematics_dataset's train split that
training never draws) and the training splits, never on the suites above.

Each example of a public suite carries a ``kind:`` tag; a suite's report breaks
its accuracies down by kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from lazarus_cot_router.experts.base import Example

KIND_TAG = "kind:"
#: Kinds whose queries no expert should take: the false positives a host sees.
NEGATIVE_KINDS = ("other", "oos")


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    load: Callable[[int, int], list[Example]]  # (held-out size, seed) -> examples


def _heldout(n: int, seed: int) -> list[Example]:
    from .data import generate_split

    return generate_split("heldout", n, seed=seed)


def _robustness(n: int, seed: int) -> list[Example]:
    from .query_files import load_robustness

    return load_robustness()


def _svamp(n: int, seed: int) -> list[Example]:
    from corpora import svamp

    return svamp.benchmark()


def _clinc150(split: str) -> Callable[[int, int], list[Example]]:
    def load(n: int, seed: int) -> list[Example]:
        from corpora import clinc150

        return clinc150.examples(split)

    return load


def _mathematics(n: int, seed: int) -> list[Example]:
    from corpora import mathematics

    return mathematics.evaluation()


def _mathematics_dev(n: int, seed: int) -> list[Example]:
    from corpora import mathematics

    return mathematics.examples("dev")


def _mawps_dev(n: int, seed: int) -> list[Example]:
    from corpora import mawps

    return mawps.examples("dev")


SUITES = {
    suite.name: suite
    for suite in (
        Suite("heldout", "generated held-out split (own generator, unseen templates and pools)", _heldout),
        Suite("robustness", "the seed's 12 public acceptance cases", _robustness),
        Suite("svamp", "SVAMP, 1,000 math word problems (public, never trained on)", _svamp),
        Suite("clinc150", "CLINC150 test: 4,500 in-scope + 1,000 out-of-scope queries (public)", _clinc150("test")),
        Suite("mathematics", "mathematics_dataset test: 598 one-operation + 300 other numeric questions (public)",
              _mathematics),
    )
}
#: Development sets: what recipes and rules may be tuned on (never the suites above).
DEV_SUITES = {
    suite.name: suite
    for suite in (
        Suite("mawps-dev", "MAWPS + ASDiv-A dev split (held out of training by a stable hash)", _mawps_dev),
        Suite("clinc150-val", "CLINC150 validation: 3,000 in-scope + 100 out-of-scope queries", _clinc150("val")),
        Suite("mathematics-dev", "mathematics_dataset train split, its dev part (held out of training by a stable hash)",
              _mathematics_dev),
    )
}


def suite_names(name: str) -> list[str]:
    """The suites ``name`` stands for (``all``: every evaluation suite, not the dev sets)."""
    if name == "all":
        return list(SUITES)
    if name not in SUITES and name not in DEV_SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join([*SUITES, *DEV_SUITES, 'all'])}")
    return [name]


def load_suite(name: str, heldout: int = 200, seed: int = 0, limit: int | None = None) -> list[Example]:
    """The examples of suite ``name``; ``limit`` keeps a stable random sample of that many."""
    examples = {**SUITES, **DEV_SUITES}[name].load(heldout, seed)
    if limit is not None and limit < len(examples):
        examples = random.Random(f"suite:{name}:{seed}").sample(examples, limit)
    return examples


def kind_of(tags) -> str | None:
    return next((tag[len(KIND_TAG):] for tag in tags if tag.startswith(KIND_TAG)), None)


def kind_rates(rows: list[dict], kinds: list[str | None]) -> dict:
    """Per kind: ``n``, expert and execution accuracy, and ``taken`` (the share an expert
    executed instead of passing through); plus ``false_positive_rate`` over the negative kinds."""
    groups: dict[str, list[dict]] = {}
    for row, kind in zip(rows, kinds):
        if kind is not None:
            groups.setdefault(kind, []).append(row)
    if not groups:
        return {}
    report = {
        kind: {"n": len(group), **{f"{k}_accuracy": sum(r[k] for r in group) / len(group) for k in ("expert", "execution")},
               "taken": sum(r["taken"] for r in group) / len(group)}
        for kind, group in sorted(groups.items())
    }
    negatives = [r for kind in NEGATIVE_KINDS for r in groups.get(kind, [])]
    result = {"kinds": report}
    if negatives:
        result["false_positive_rate"] = sum(r["taken"] for r in negatives) / len(negatives)
    return result
