"""Synthetic word problems: people, things, steps and sentence templates.

A problem is a start quantity, one to four ordinary steps (``+ - *``) and at
most one final step (selling the rest, splitting among friends). Each step has
present, past and terse wordings; the spec is written from the same numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .sampling import Split, Template, templates


@dataclass(frozen=True)
class Entity:
    id: str
    kinds: frozenset[str]
    container: str
    money_format: str | None = None

    def amount(self, n: int) -> str:
        return self.money_format.format(n=n) if self.money_format else str(n)

    def start(self, n: int) -> str:
        return self.money_format.format(n=n) if self.money_format else f"{n} {self.id}"


def _entity(noun: str, kinds: str, container: str, money: str | None = None) -> Entity:
    return Entity(noun, frozenset(kinds.split()), container, money)


ENTITIES = Split(
    "entities",
    (
        _entity("eggs", "food bakeable", "basket"), _entity("apples", "food bakeable", "basket"),
        _entity("cookies", "food", "jar"), _entity("oranges", "food", "crate"),
        _entity("cupcakes", "food", "box"), _entity("books", "thing", "shelf"),
        _entity("marbles", "thing", "bag"), _entity("stickers", "thing", "album"),
        _entity("pencils", "thing", "case"), _entity("cards", "thing", "deck box"),
        _entity("toys", "thing", "toy box"), _entity("shells", "thing", "bucket"),
        _entity("dollars", "money", "wallet", "${n}"),
    ),
    (
        _entity("muffins", "food", "tin"), _entity("bananas", "food", "bowl"),
        _entity("pretzels", "food", "bag"), _entity("plums", "food", "basket"),
        _entity("coins", "thing", "jar"), _entity("stamps", "thing", "album"),
        _entity("crayons", "thing", "box"), _entity("balloons", "thing", "closet"),
        _entity("beads", "thing", "pouch"), _entity("euros", "money", "purse", "€{n}"),
    ),
)

NAMES = Split(
    "names",
    ("Janet:she", "Tom:he", "Maria:she", "Sam:he", "Liam:he", "Emma:she", "Noah:he",
     "Olivia:she", "Ben:he", "Lucy:she", "Omar:he", "Priya:she", "Jack:he", "Nina:she"),
    ("Grace:she", "Henry:he", "Zoe:she", "Victor:he", "Mei:she", "Diego:he", "Fatima:she",
     "Arthur:he", "Ingrid:she", "Kwame:he"),
)


@dataclass(frozen=True)
class Step:
    id: str
    op: str
    kinds: frozenset[str]
    present: str
    past: str
    terse: str
    final: str | None = None
    factor: int | None = None
    questions: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)


def _step(id: str, op: str, kinds: str, present: str, past: str, terse: str | None = None,
          factor: int | None = None, final: str | None = None,
          questions: dict[str, tuple[str, ...]] | None = None) -> Step:
    return Step(id, op, frozenset(kinds.split()), present, past, terse or present, final, factor, questions or {})


_ANY = "food thing"
_SELL_Q = dict(full=("How much money does {pr} make?",), terse=("How much?",),
               held=("What are {pos} total earnings?",), when=("how much money would {pr} make?",))
_SPLIT_Q = dict(full=("How many does each friend get?",), terse=("How many each?",),
                held=("What does each friend receive?",), when=("how many would each friend get?",))
_SHARE_Q = dict(full=("How many does each classmate receive?",), terse=("Each gets how many?",),
                held=("What is each classmate's share?",), when=("what would each classmate get?",))

STEPS = Split(
    "steps",
    (
        _step("eat", "-", "food", "eats {amt}", "ate {amt}"),
        _step("bake", "-", "bakeable", "bakes {amt} into muffins", "baked {amt} into muffins", "bakes {amt}"),
        _step("give", "-", _ANY, "gives away {amt}", "gave away {amt}"),
        _step("lose", "-", "thing", "loses {amt}", "lost {amt}"),
        _step("buy", "+", _ANY, "buys {amt} more", "bought {amt} more"),
        _step("find", "+", "thing", "finds {amt}", "found {amt}"),
        _step("double", "*", _ANY + " money", "doubles {pos} {thing}", "doubled {pos} {thing}",
              "doubles {them}", factor=2),
        _step("spend", "-", "money", "spends {amt} on lunch", "spent {amt} on lunch", "spends {amt}"),
        _step("earn", "+", "money", "earns {amt} mowing lawns", "earned {amt} mowing lawns", "earns {amt}"),
        _step("sell", "*", _ANY, "sells the rest for ${n} each", "sold the rest for ${n} each",
              terse="sells rest for ${n}", final="sell", questions=_SELL_Q),
        _step("split", "/", _ANY + " money", "splits {them} equally among {n} friends",
              "split {them} equally among {n} friends", terse="splits {them} among {n} friends",
              final="split", questions=_SPLIT_Q),
    ),
    (
        _step("drop", "-", "food", "drops {amt}", "dropped {amt}"),
        _step("misplace", "-", "thing", "misplaces {amt}", "misplaced {amt}"),
        _step("trade", "-", _ANY, "trades away {amt}", "traded away {amt}"),
        _step("gift", "+", _ANY + " money", "is given {amt} by a neighbor", "was given {amt} by a neighbor",
              "gets {amt} as a gift"),
        _step("collect", "+", "thing", "collects {amt} more", "collected {amt} more"),
        _step("triple", "*", _ANY + " money", "triples {pos} {thing}", "tripled {pos} {thing}",
              "triples {them}", factor=3),
        _step("pay", "-", "money", "pays {amt} for a ticket", "paid {amt} for a ticket", "pays {amt}"),
        _step("apiece", "*", _ANY, "sells every remaining one at ${n} apiece",
              "sold every remaining one at ${n} apiece", terse="sells all at ${n} apiece", final="sell",
              questions=_SELL_Q),
        _step("share", "/", _ANY + " money", "shares {them} equally among {n} classmates",
              "shared {them} equally among {n} classmates", terse="shares {them} among {n} classmates",
              final="split", questions=_SHARE_Q),
    ),
)

_PLAIN_Q = {
    ("count", "full"): ("How many {noun} does {pr} have now?", "How many {noun} are left?"),
    ("count", "terse"): ("How many left?", "How many now?"),
    ("count", "held"): ("What number of {noun} does {pr} end up with?",),
    ("count", "when"): ("how many {noun} would {pr} have?",),
    ("money", "full"): ("How much money does {pr} have now?", "How much is left?"),
    ("money", "terse"): ("How much left?",),
    ("money", "held"): ("What amount does {pr} end up with?",),
    ("money", "when"): ("how much money would {pr} have?",),
}

# (style, text): style picks the question wording.
_TEMPLATE_STYLES = {
    "wp:train:0": "full", "wp:train:1": "terse", "wp:train:2": "full", "wp:train:3": "full",
    "wp:heldout:0": "held", "wp:heldout:1": "when", "wp:heldout:2": "held", "wp:heldout:3": "held",
}
TEMPLATES = Split(
    "templates",
    templates("wp:train:", [
        "{Name} has {start}. {Pr} {present}. {question}",
        "{Name} has {start}, {terse}. {question}",
        "{Name} starts with {start}. {sentences} {question}",
        "{Name} has {start} and {present}. {question}",
    ]),
    templates("wp:heldout:", [
        "There are {start} in {Name}'s {container}. {Pr} {present}. {question}",
        "If {Name} had {start} and {past}, {question}",
        "Starting with {start}, {Name} {present}. {question}",
        "{Name}'s {container} holds {start}. Over the week {pr} {present}. {question}",
    ]),
)

_RANGES = {
    "train": dict(start=(10, 60), money=(20, 100), amount=(1, 9), price=(2, 5), divisor=(2, 6), steps=3),
    "heldout": dict(start=(61, 400), money=(101, 500), amount=(10, 40), price=(6, 15), divisor=(7, 12),
                    steps=4),
}


def _join(parts: list[str], last: str = " and ") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + last + parts[-1]


def _plan(rng: random.Random, split: str, entity: Entity) -> tuple[int, list[tuple[Step, int]]]:
    ranges = _RANGES["heldout" if split == "heldout" else "train"]
    usable = [s for s in STEPS.items(split) if s.kinds & entity.kinds]
    ordinary = [s for s in usable if not s.final]
    value = rng.randint(*ranges["money" if entity.money_format else "start"])
    start, plan = value, []
    for _ in range(rng.randint(1, ranges["steps"])):
        step = rng.choice([s for s in ordinary if not plan or s is not plan[-1][0]])
        low, high = ranges["amount"]
        if step.op == "-" and value - 1 >= low:
            amount = rng.randint(low, min(high, value - 1))
            value -= amount
        elif step.op == "+":
            amount = rng.randint(low, high)
            value += amount
        elif step.op == "*" and not any(s.op == "*" for s, _ in plan):
            amount = step.factor
            value *= amount
        else:
            continue
        plan.append((step, amount))
    finals = [s for s in usable if s.final] if rng.random() < 0.5 or not plan else []
    rng.shuffle(finals)
    for step in finals:
        if step.final == "split":
            divisors = [d for d in range(ranges["divisor"][0], ranges["divisor"][1] + 1) if value % d == 0]
            if divisors:
                plan.append((step, rng.choice(divisors)))
                break
        else:
            plan.append((step, rng.randint(*ranges["price"])))
            break
    if not plan:
        buy = next(s for s in ordinary if s.op == "+")
        plan.append((buy, rng.randint(*ranges["amount"])))
    return start, plan


def compose(rng: random.Random, split: str) -> tuple[str, str, tuple[str, ...]]:
    """One word problem for ``split``: ``(query, spec, tags)``."""
    template: Template = TEMPLATES.choice(rng, split)
    entity = ENTITIES.choice(rng, split)
    name, pronoun = NAMES.choice(rng, split).split(":")
    start, plan = _plan(rng, split, entity)
    money = entity.money_format is not None
    words = dict(pr=pronoun, Pr=pronoun.capitalize(), pos="her" if pronoun == "she" else "his",
                 noun=entity.id, thing="money" if money else entity.id, them="it" if money else "them")

    def say(step: Step, form: str, amount: int) -> str:
        return getattr(step, form).format(amt=entity.amount(amount), n=amount, **words)

    style = _TEMPLATE_STYLES[template.id]
    last = plan[-1][0]
    options = last.questions[style] if last.final else _PLAIN_Q[("money" if money else "count", style)]
    connectors = ["Then", "Next,", "After that,", "Finally,"]
    sentences = " ".join(f"{connectors[min(i, 3)]} {pronoun} {say(s, 'present', a)}."
                         for i, (s, a) in enumerate(plan))
    query = template.fill(
        Name=name, start=entity.start(start), container=entity.container,
        present=_join([say(s, "present", a) for s, a in plan]),
        past=_join([say(s, "past", a) for s, a in plan], " and then "),
        terse=", ".join(say(s, "terse", a) for s, a in plan),
        sentences=sentences, question=rng.choice(options).format(**words), **words,
    )
    spec = f"{entity.id}:{start} | " + " ".join(f"{s.op}{a}" for s, a in plan)
    tags = (f"template:{template.id}", f"entity:{entity.id}") + tuple(f"step:{s.id}" for s, _ in plan)
    return query, spec, tags
