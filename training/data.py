"""Training and evaluation data: generated splits mixed with the public corpora.

``lazarus-cot-router data --split heldout -n 200 --seed 0 --out heldout.yaml``

Each registered expert's generator draws base queries from its split-aware pools
(:func:`training.generators.sample_example`: the built-in generators, or a
plugin's own ``Expert.sample_example``); this module mixes them, adds the generic
variations of :mod:`training.generators.variations` (an extra instruction,
politeness, casing, typos) and, for training, MAWPS + ASDiv-A and CLINC150
examples. Query files are :mod:`training.query_files`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from typing import Mapping, Sequence

from lazarus_cot_router.experts.base import Example, Expert, ExpertError, check_split
from lazarus_cot_router.plugins import get_experts

from .config import ConfigError
from .distractors import add_distractors
from .generators import pool_ids, sample_example
from .generators.unsupported import examples as unsupported_examples
from .generators.variations import has_instruction, variation_pools, vary_example
from .query_files import dump_yaml, export_yaml

MAX_STALLS = 200


def split_pools_overlap(experts: Sequence[Expert] | None = None) -> dict[str, frozenset[str]]:
    """For every pool kind (variations and each expert's :func:`~training.generators.pool_ids`),
    the ids found in both ``train`` and ``heldout``; all empty when the splits
    are disjoint."""
    overlaps = {f"variation:{pool.kind}": pool.ids("train") & pool.ids("heldout") for pool in variation_pools()}
    for expert in _resolve(experts):
        train, heldout = pool_ids(expert, "train"), pool_ids(expert, "heldout")
        for kind in sorted(set(train) | set(heldout)):
            overlaps[f"{expert.name}:{kind}"] = train.get(kind, frozenset()) & heldout.get(kind, frozenset())
    return overlaps


def default_mix(experts: Sequence[Expert]) -> dict[str, float]:
    """Equal weight per host action kind, shared by the experts that map to it
    (the four arithmetic experts share ``math``), as in the seed's data."""
    groups: dict[str, list[str]] = {}
    for expert in experts:
        groups.setdefault(_host_group(expert), []).append(expert.name)
    return {name: 1.0 / len(members) for members in groups.values() for name in members}


def training_mix(experts: Sequence[Expert], weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """:func:`default_mix` scaled by each expert's ``train_weight`` (or its entry in ``weights``):
    the mix ``train`` generates its training data with."""
    weights = weights or {}
    unknown = set(weights) - {expert.name for expert in experts}
    if unknown:
        raise ConfigError(f"unknown expert(s) in expert_weights: {', '.join(sorted(unknown))}; registered: {', '.join(e.name for e in experts)}")
    plain = default_mix(experts)
    return {expert.name: plain[expert.name] * weights.get(expert.name, expert.train_weight) for expert in experts}


def generate_split(
    split: str,
    n: int,
    seed: int = 0,
    experts: Sequence[Expert | str] | Mapping[str, Expert] | None = None,
    mix: Mapping[str, float] | None = None,
) -> list[Example]:
    """``n`` distinct examples for ``split``, deterministic for ``seed``.

    ``mix`` overrides the :func:`default_mix` weight of the experts it names."""
    check_split(split)
    pool = _resolve(experts)
    weights = default_mix(pool)
    for name, weight in (mix or {}).items():
        if name not in weights:
            raise ValueError(f"mix names unknown expert {name!r}; known: {', '.join(weights)}")
        if not weight >= 0:
            raise ValueError(f"mix weight of {name!r} must be >= 0, got {weight}")
        weights[name] = float(weight)
    active = [expert for expert in pool if weights[expert.name] > 0]
    if n > 0 and not active:
        raise ValueError("no expert has a positive weight")
    quota = _quotas(n, [weights[e.name] for e in active])
    rng = random.Random(f"lazarus-cot-router:{split}:{seed}")
    examples: list[Example] = []
    seen: set[str] = set()
    counts = Counter()
    stalls = Counter()
    while len(examples) < n:
        open_ = [i for i, e in enumerate(active) if stalls[e.name] < MAX_STALLS]
        if not open_:
            raise ValueError(f"could draw only {len(examples)} distinct {split} queries of {n}; ask for fewer")
        i = max(open_, key=lambda i: (quota[i] - counts[active[i].name], -i))
        if quota[i] <= counts[active[i].name]:
            i = rng.choices(open_, [weights[active[j].name] for j in open_])[0]
        expert = active[i]
        example = vary_example(sample_example(expert, rng, split), rng, split)
        if example.query in seen:
            stalls[expert.name] += 1
            continue
        stalls[expert.name] = 0
        counts[expert.name] += 1
        seen.add(example.query)
        examples.append(example)
    rng.shuffle(examples)
    return examples


def corpus_examples(mawps: int = 0, clinc: int = 0, seed: int = 0, distractor_share: float = 0.0,
                    mathematics: int = 0, gsm8k: int = 0) -> list[Example]:
    """Examples from the public training corpora: ``mawps`` word problems of the MAWPS + ASDiv-A
    training split; ``clinc`` queries of the CLINC150 training split: first those of its ``time``
    and ``calculator`` intents (a few hundred: the ones it maps to an expert, and the hard
    negatives, "what time is it" and "square root of 80", that no expert can take), the rest drawn
    from its other intents and out-of-scope queries; ``mathematics`` questions of
    mathematics_dataset's train split (one-operation arithmetic, and kinds no expert answers that
    its test split never asks); ``gsm8k`` word problems of GSM8K's train split. Evaluation sets
    (SVAMP, CLINC150 test, mathematics_dataset test, the dev splits) are never drawn from. A
    ``distractor_share`` of the word problems get a distractor
    (:func:`training.distractors.add_distractors`, donors from the same training split)."""
    import corpora.clinc150
    import corpora.gsm8k
    import corpora.mathematics
    import corpora.mawps

    rng = random.Random(f"lazarus-cot-router:corpora:{seed}")
    picked: list[Example] = []
    if mawps > 0:
        pool = corpora.mawps.examples("train")
        drawn = rng.sample(pool, min(mawps, len(pool)))
        if distractor_share:
            drawn = add_distractors(drawn, distractor_share, pool, random.Random(f"lazarus-cot-router:distractors:{seed}"))
        picked += drawn
    if clinc > 0:
        pool = corpora.clinc150.examples("train")
        first = [e for e in pool if corpora.clinc150.kind_of(e) not in ("other", "oos")]
        rest = [e for e in pool if corpora.clinc150.kind_of(e) in ("other", "oos")]
        picked += rng.sample(first, min(clinc, len(first)))
        picked += rng.sample(rest, min(max(0, clinc - len(first)), len(rest)))
    if mathematics > 0:
        pool = corpora.mathematics.examples("train")
        picked += rng.sample(pool, min(mathematics, len(pool)))
    if gsm8k > 0:
        pool = corpora.gsm8k.examples("train")
        picked += rng.sample(pool, min(gsm8k, len(pool)))
    return picked


def training_examples(examples: int, seed: int, experts: Sequence[Expert], mawps: int = 0, clinc: int = 0,
                      distractor_share: float = 0.0, unsupported: int = 0, mathematics: int = 0,
                      gsm8k: int = 0, weights: Mapping[str, float] | None = None) -> list[Example]:
    """The training set: ``examples`` generated with :func:`training_mix`, plus the public
    corpora's share (:func:`corpus_examples`) and ``unsupported`` requests for a computation no
    built-in expert does (:mod:`training.generators.unsupported`, chat), shuffled together.
    ``weights`` replaces the ``train_weight`` of the experts it names."""
    generated = generate_split("train", examples, seed, experts=experts, mix=training_mix(list(experts), weights))
    if unsupported and "chat" in {expert.name for expert in experts}:
        generated += unsupported_examples(unsupported, seed)
    combined = generated + corpus_examples(mawps, clinc, seed, distractor_share, mathematics, gsm8k)
    random.Random(f"lazarus-cot-router:train-mix:{seed}").shuffle(combined)
    return combined


def examples_digest(system: str, examples: Sequence[Example]) -> str:
    """A fingerprint of what SFT and RL train on: the system prompt and each example's query and
    gold line, in order. A checkpoint records it, so a run is never resumed on other data."""
    digest = hashlib.sha256(system.encode())
    for example in examples:
        digest.update(json.dumps([example.query, example.expert, example.spec, example.answer]).encode())
    return digest.hexdigest()


def _resolve(experts: Sequence[Expert | str] | Mapping[str, Expert] | None) -> list[Expert]:
    if experts is None:
        return list(get_experts().values())
    if isinstance(experts, Mapping):
        return list(experts.values())
    registry = None
    resolved = []
    for item in experts:
        if isinstance(item, str):
            registry = registry or get_experts()
            if item not in registry:
                raise ValueError(f"unknown expert {item!r}; registered: {', '.join(registry)}")
            item = registry[item]
        resolved.append(item)
    return resolved


def _host_group(expert: Expert) -> str:
    example = sample_example(expert, random.Random(f"group:{expert.name}"), "train")
    try:
        return expert.host_action(example.spec).expert
    except (ExpertError, NotImplementedError):
        return expert.name


def _quotas(n: int, weights: Sequence[float]) -> list[int]:
    total = sum(weights)
    if not total:
        return [0] * len(weights)
    exact = [n * w / total for w in weights]
    quota = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: quota[i] - exact[i])[: n - sum(quota)]:
        quota[i] += 1
    return quota


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus-cot-router data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="train", choices=("train", "calib", "heldout"))
    parser.add_argument("-n", "--examples", type=int, default=500, help="number of examples (default: 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experts", default=None, help="comma-separated expert names (default: all registered)")
    parser.add_argument("--mix", default=None, metavar="NAME=W,...", help="weights overriding the default mix")
    parser.add_argument("--out", default=None, help="YAML file to write (default: standard output)")
    return parser


def parse_mix(text: str) -> dict[str, float]:
    """``"chat=2,time=0.5"`` as ``{"chat": 2.0, "time": 0.5}``."""
    mix = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, weight = item.partition("=")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--mix expects NAME=WEIGHT items, got {item!r}")
    return mix


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        experts = [name.strip() for name in args.experts.split(",")] if args.experts else None
        mix = parse_mix(args.mix) if args.mix else None
        examples = generate_split(args.split, args.examples, seed=args.seed, experts=experts, mix=mix)
    except ValueError as error:
        print(f"lazarus-cot-router data: {error}", file=sys.stderr)
        return 2
    if args.out:
        export_yaml(examples, args.out)
    else:
        sys.stdout.write(dump_yaml(examples))
    counts = ", ".join(f"{name} {count}" for name, count in Counter(e.expert for e in examples).items())
    share = sum(map(has_instruction, examples)) / max(1, len(examples))
    where = f"; wrote {args.out}" if args.out else ""
    print(f"{len(examples)} {args.split} examples ({counts}); {share:.0%} with an extra instruction{where}", file=sys.stderr)
    return 0
