"""Training and evaluation data: generated splits, query variations, YAML files.

``lazarus-cot-router data --split heldout -n 200 --seed 0 --out heldout.yaml``

Each registered expert's generator draws base queries from its split-aware pools
(:func:`training.generators.sample_example`: the built-in generators, or a
plugin's own ``Expert.sample_example``); this module mixes them and adds generic
variations that never change the gold line: an extra instruction ("answer in
french"), politeness, casing and light typos. Variation pools are split too, so
the held-out split tests instructions the router never saw. Casing and typos
never touch numbers or any word the spec copies.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from lazarus_cot_router.atomic import atomic_write
from lazarus_cot_router.experts.base import Example, Expert, ExpertError, check_split
from lazarus_cot_router.grammar import ARROW, EXPERT_NAME
from lazarus_cot_router.plugins import get_experts

from .generators import pool_ids, sample_example
from .generators.pools import Split, Template

INSTRUCTION_TAG = "instruction:"
INSTRUCTION_RATE = 0.45
POLITE_RATE = 0.15
TYPO_RATE = 0.1
CASE_RATES = (("lower", 0.05), ("upper", 0.04), ("title", 0.03))
MAX_STALLS = 200
FIELDS = ("query", "expert", "spec", "answer")


def _phrases(texts: Sequence[str]) -> tuple[Template, ...]:
    return tuple(Template(_slug(text), text) for text in texts)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower().replace("{q}", "")).strip("-")


INSTRUCTIONS = Split(
    "instructions",
    _phrases([
        "answer in french", "be brief", "show your work", "step by step", "in JSON",
        "explain like I'm five", "answer in one word", "reply in Spanish", "answer briefly",
        "keep it short", "no explanation needed", "respond in German", "be concise",
        "format the answer as markdown", "think it through carefully", "in under 20 words",
        "just the answer", "use simple words", "answer in Italian", "double-check your answer",
        "reply casually", "in one sentence",
    ]),
    _phrases([
        "en français s'il vous plaît", "use bullet points", "keep it under 10 words",
        "respond in Japanese", "answer like a pirate", "put the answer in bold",
        "no more than one line", "auf Deutsch bitte", "explain your reasoning", "as a table",
        "make it formal", "por favor responde en español", "write it as a haiku",
        "summarize it in a tweet",
    ]),
)

POLITENESS = Split(
    "politeness",
    _phrases(["please, {q}", "could you help? {q}", "hey, {q}", "hi! {q}", "{q} please", "{q} thanks", "{q} thank you"]),
    _phrases(["kindly answer this: {q}", "hello there! {q}", "excuse me, {q}", "{q} cheers", "{q} much appreciated"]),
)

_PREFIX_SEPARATORS = (": ", ". ", " - ", "\n")
_SUFFIX_SEPARATORS = (", ", ". ", " - ", "\n")
_AFTER_SENTENCE = (" ", "\n", " - ")
_WORD = re.compile(r"(?<!\w)[^\W\d_]+(?:'[^\W\d_]+)*(?!\w)")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion half halves third thirds quarter quarters dozen dozens twice thrice double "
    "doubled doubles triple triples tripled pair pairs couple first second fourth fifth hour hours minute minutes "
    "noon midnight".split()
)


class QueryFileError(ValueError):
    """A query YAML file that does not follow the schema."""


def has_instruction(example: Example) -> bool:
    return any(tag.startswith(INSTRUCTION_TAG) for tag in example.tags)


def variation_pools() -> tuple[Split, ...]:
    return INSTRUCTIONS, POLITENESS


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


def training_mix(experts: Sequence[Expert]) -> dict[str, float]:
    """:func:`default_mix` scaled by each expert's ``train_weight``: the mix
    ``train`` generates its training data with."""
    plain = default_mix(experts)
    return {expert.name: plain[expert.name] * expert.train_weight for expert in experts}


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


def corpus_examples(mawps: int = 0, clinc: int = 0, seed: int = 0) -> list[Example]:
    """Examples from the public training corpora: ``mawps`` word problems of the MAWPS + ASDiv-A
    training split, and ``clinc`` queries of the CLINC150 training split: first those of its
    ``time`` and ``calculator`` intents (a few hundred: the ones it maps to an expert, and the hard
    negatives, "what time is it" and "square root of 80", that no expert can take), the rest drawn
    from its other intents and out-of-scope queries. Evaluation sets (SVAMP, CLINC150 test, the
    dev splits) are never drawn from."""
    import corpora.clinc150
    import corpora.mawps

    rng = random.Random(f"lazarus-cot-router:corpora:{seed}")
    picked: list[Example] = []
    if mawps > 0:
        pool = corpora.mawps.examples("train")
        picked += rng.sample(pool, min(mawps, len(pool)))
    if clinc > 0:
        pool = corpora.clinc150.examples("train")
        first = [e for e in pool if corpora.clinc150.kind_of(e) not in ("other", "oos")]
        rest = [e for e in pool if corpora.clinc150.kind_of(e) in ("other", "oos")]
        picked += rng.sample(first, min(clinc, len(first)))
        picked += rng.sample(rest, min(max(0, clinc - len(first)), len(rest)))
    return picked


def training_examples(examples: int, seed: int, experts: Sequence[Expert], mawps: int = 0, clinc: int = 0) -> list[Example]:
    """The training set: ``examples`` generated with :func:`training_mix`, plus the public
    corpora's share (:func:`corpus_examples`), shuffled together."""
    generated = generate_split("train", examples, seed, experts=experts, mix=training_mix(list(experts)))
    combined = generated + corpus_examples(mawps, clinc, seed)
    random.Random(f"lazarus-cot-router:train-mix:{seed}").shuffle(combined)
    return combined


def vary_example(example: Example, rng: random.Random, split: str) -> Example:
    """``example`` with generic variations applied; spec and answer unchanged."""
    query, tags = example.query, list(example.tags)
    copied = set(_WORD.findall(example.spec)) | set(re.findall(r"[A-Za-z]+", example.spec))
    if rng.random() < POLITE_RATE:
        phrase = POLITENESS.choice(rng, split).text
        if phrase.startswith("{q}"):
            query = _append(query, phrase.removeprefix("{q}").strip(), rng)
        else:
            query = _capitalize(phrase.replace("{q}", query))
        tags.append("polite")
    if rng.random() < INSTRUCTION_RATE:
        instruction = INSTRUCTIONS.choice(rng, split)
        if rng.random() < 0.7:
            query = _append(query, instruction.text, rng)
            tags += [INSTRUCTION_TAG + instruction.id, "instruction-at:suffix"]
        else:
            query = _prepend(query, instruction.text, rng)
            tags += [INSTRUCTION_TAG + instruction.id, "instruction-at:prefix"]
    if rng.random() < TYPO_RATE:
        typo = add_typo(query, copied, rng)
        if typo != query:
            query = typo
            tags.append("typo")
    draw, threshold = rng.random(), 0.0
    for case, rate in CASE_RATES:
        threshold += rate
        if draw < threshold:
            changed = change_case(query, case, copied)
            if changed != query:
                query = changed
                tags.append(f"case:{case}")
            break
    return Example(query, example.expert, example.spec, example.answer, tuple(tags))


def add_typo(query: str, protected: set[str], rng: random.Random) -> str:
    """Swap two letters or drop one inside a lowercase word of 4+ letters that
    is not a number word and not copied by the spec."""
    lowered = {word.lower() for word in protected}
    spans = [
        m.span() for m in _WORD.finditer(query)
        if len(m.group()) >= 4 and m.group().isalpha() and m.group().islower()
        and m.group() not in _NUMBER_WORDS and not any(m.group() in w or w in m.group() for w in lowered if len(w) > 1)
    ]
    if not spans:
        return query
    start, end = rng.choice(spans)
    word = query[start:end]
    k = rng.randrange(1, len(word) - 1)
    if word[k] != word[k + 1] and rng.random() < 0.5:
        typo = word[:k] + word[k + 1] + word[k] + word[k + 2:]
    else:
        typo = word[:k] + word[k + 1:]
    return query[:start] + typo + query[end:]


def change_case(query: str, case: str, protected: set[str]) -> str:
    """``lower``, ``upper`` or ``title`` case for every word the spec does not copy."""
    change = {"lower": str.lower, "upper": str.upper, "title": str.capitalize}[case]
    return _WORD.sub(lambda m: m.group() if m.group() in protected else change(m.group()), query)


def dump_yaml(examples: Sequence[Example]) -> str:
    """``examples`` in the acceptance-file schema, plus ``tags`` when present;
    integral answers are written as numbers, as in that file."""
    rows = []
    for example in examples:
        row: dict[str, Any] = {"query": example.query, "expert": example.expert, "spec": example.spec,
                               "answer": _yaml_answer(example.answer)}
        if example.tags:
            row["tags"] = list(example.tags)
        rows.append(row)
    return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True, default_flow_style=None, width=math.inf)


def export_yaml(examples: Sequence[Example], path: str | os.PathLike) -> None:
    """Write :func:`dump_yaml` to ``path`` atomically."""
    atomic_write(path, dump_yaml(examples))


def load_queries(path: str | os.PathLike) -> list[Example]:
    """Read a query file (``query, expert, spec, answer`` and optional ``tags``)."""
    return parse_queries(Path(path).read_text(encoding="utf-8"), str(path))


def load_robustness() -> list[Example]:
    """The seed's robustness cases, shipped as package data."""
    text = resources.files("lazarus_cot_router").joinpath("data/robustness.yaml").read_text(encoding="utf-8")
    return parse_queries(text, "robustness.yaml")


def parse_queries(text: str, source: str = "<queries>") -> list[Example]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise QueryFileError(f"{source}: malformed YAML{at}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(data, list):
        raise QueryFileError(f"{source}: expected a list of entries, got {type(data).__name__ if data is not None else 'nothing'}")
    return [_parse_entry(entry, index, source) for index, entry in enumerate(data)]


def _parse_entry(entry: Any, index: int, source: str) -> Example:
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise QueryFileError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}")
    for key in entry:
        if key not in FIELDS + ("tags",):
            raise QueryFileError(f"{where}: unknown field {key!r}; allowed: {', '.join(FIELDS)}, tags")
    for key in FIELDS:
        if key not in entry:
            raise QueryFileError(f"{where}: missing field {key!r}")
    query, expert, spec, answer = (entry[key] for key in FIELDS)
    if not isinstance(query, str) or not query.strip():
        raise QueryFileError(f"{where}: field 'query': expected non-empty text, got {query!r}")
    if not isinstance(expert, str) or not EXPERT_NAME.fullmatch(expert):
        raise QueryFileError(f"{where}: field 'expert': expected an expert name ([a-z][a-z0-9_]*), got {expert!r}")
    if not isinstance(spec, str) or ARROW in spec or "\n" in spec:
        raise QueryFileError(f"{where}: field 'spec': expected one line of text without '->', got {spec!r}")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise QueryFileError(f"{where}: field 'tags': expected a list of strings, got {tags!r}")
    return Example(query, expert, spec, _answer_text(answer, where), tuple(tags))


def _answer_text(answer: Any, where: str) -> str | None:
    if answer is None or isinstance(answer, str):
        return answer
    if isinstance(answer, int) and not isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, float) and math.isfinite(answer):
        return str(int(answer)) if answer.is_integer() else f"{answer:.6f}".rstrip("0").rstrip(".")
    raise QueryFileError(f"{where}: field 'answer': expected text, a number or null, got {answer!r}")


def _yaml_answer(answer: str | None) -> int | str | None:
    if answer is not None and re.fullmatch(r"-?[0-9]+", answer) and str(int(answer)) == answer:
        return int(answer)
    return answer


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


def _append(query: str, text: str, rng: random.Random) -> str:
    stripped = query.rstrip()
    separator = rng.choice(_AFTER_SENTENCE if stripped[-1:] in ".?!" else _SUFFIX_SEPARATORS)
    if separator in (", ", " - "):
        return stripped + separator + text
    return stripped + separator + _capitalize(text) + rng.choice(("", "."))


def _prepend(query: str, text: str, rng: random.Random) -> str:
    return _capitalize(text) + rng.choice(_PREFIX_SEPARATORS) + query


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


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
