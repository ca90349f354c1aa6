"""Synthetic word problems: people, things, steps and sentence templates.

A problem is a start quantity, one to four ordinary steps (``+ - *``) and at
most one final step (selling the rest, splitting among friends). Each step has
present, past and terse wordings; the spec is written from the same numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.word_problem import WordProblemExpert

from .pools import Split, Template, ids_by_kind, templates


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
        _entity("eggs", "food bakeable fragile", "basket"), _entity("apples", "food bakeable pickable", "basket"),
        _entity("cookies", "food baked", "jar"), _entity("oranges", "food pickable", "crate"),
        _entity("cupcakes", "food baked", "box"), _entity("books", "thing", "shelf"),
        _entity("marbles", "thing", "bag"), _entity("stickers", "thing", "album"),
        _entity("pencils", "thing fragile", "case"), _entity("cards", "thing", "deck box"),
        _entity("toys", "thing", "toy box"), _entity("shells", "thing", "bucket"),
        _entity("dollars", "money", "wallet", "${n}"),
        # More nouns, so a noun the model has not seen is copied rather than swapped for a known one.
        _entity("pears", "food bakeable pickable", "crate"), _entity("peaches", "food bakeable pickable", "basket"),
        _entity("cherries", "food bakeable pickable", "bowl"), _entity("lemons", "food bakeable pickable", "bowl"),
        _entity("blueberries", "food bakeable pickable", "carton"),
        _entity("strawberries", "food bakeable pickable", "basket"),
        _entity("apricots", "food bakeable pickable", "basket"), _entity("carrots", "food bakeable", "bag"),
        _entity("pumpkins", "food bakeable pickable", "cart"), _entity("potatoes", "food", "sack"),
        _entity("tomatoes", "food pickable", "crate"), _entity("grapes", "food pickable", "bowl"),
        _entity("mangoes", "food", "box"), _entity("kiwis", "food", "bowl"),
        _entity("tangerines", "food pickable", "bag"), _entity("onions", "food", "sack"),
        _entity("donuts", "food baked", "box"), _entity("bagels", "food baked", "bag"),
        _entity("biscuits", "food baked", "tin"), _entity("pies", "food baked", "rack"),
        _entity("brownies", "food baked", "tray"), _entity("pancakes", "food", "plate"),
        _entity("sandwiches", "food", "lunchbox"), _entity("candies", "food", "jar"),
        _entity("lollipops", "food", "jar"), _entity("chocolates", "food", "box"),
        _entity("crackers", "food fragile", "box"), _entity("peanuts", "food", "bag"),
        _entity("walnuts", "food", "bag"), _entity("dumplings", "food", "pot"),
        _entity("pens", "thing", "case"), _entity("erasers", "thing", "pencil case"),
        _entity("buttons", "thing", "jar"), _entity("rocks", "thing", "bucket"),
        _entity("pebbles", "thing", "jar"), _entity("comics", "thing", "shelf"),
        _entity("magazines", "thing", "rack"), _entity("puzzles", "thing", "cupboard"),
        _entity("blocks", "thing", "bin"), _entity("dice", "thing", "cup"),
        _entity("ribbons", "thing", "drawer"), _entity("postcards", "thing", "shoebox"),
        _entity("keychains", "thing", "drawer"), _entity("feathers", "thing", "box"),
        _entity("paperclips", "thing", "tray"), _entity("notebooks", "thing", "backpack"),
        _entity("candles", "thing fragile", "drawer"), _entity("socks", "thing", "drawer"),
        _entity("badges", "thing", "tin"), _entity("magnets", "thing", "tin"),
        _entity("bricks", "thing", "bin"), _entity("kites", "thing", "garage"),
        _entity("flowers", "thing pickable", "vase"), _entity("plates", "thing fragile", "cupboard"),
        _entity("figurines", "thing fragile", "shelf"),
        _entity("pounds", "money", "wallet", "£{n}"),
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
     "Olivia:she", "Ben:he", "Lucy:she", "Omar:he", "Priya:she", "Jack:he", "Nina:she",
     "Carlos:he", "Aisha:she", "Ethan:he", "Chloe:she", "Lucas:he", "Hana:she", "Mateo:he", "Amara:she",
     "Oliver:he", "Leah:she", "Ravi:he", "Isabel:she", "Daniel:he", "Yuki:she", "Hassan:he", "Elena:she",
     "Peter:he", "Anya:she", "Felix:he", "Sara:she", "Marcus:he", "Layla:she", "Jonah:he", "Mira:she",
     "Kenji:he", "Ruth:she", "Theo:he", "Ada:she", "Malik:he", "Clara:she", "Paul:he", "Nadia:she",
     "Luis:he", "Ivy:she", "Sean:he", "Wei:he"),
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
_COUSIN_Q = dict(full=("How many does each cousin get?",), terse=("How many per cousin?",),
                 held=("What is each cousin's share?",), when=("how many would each cousin get?",))
_BAG_Q = dict(full=("How many go in each bag?",), terse=("How many per bag?",),
              held=("What ends up in each bag?",), when=("how many would go in each bag?",))
_SHARE_Q = dict(full=("How many does each classmate receive?",), terse=("Each gets how many?",),
                held=("What is each classmate's share?",), when=("what would each classmate get?",))

# Verbs are the problem's operators, a shared vocabulary like "plus" or "times", not a held-out
# pool: held out, the 135M router wrote "+" for every verb it had never seen (17.5% of held-out
# word problems right). Held-out problems still use unseen templates, entities, names and numbers.
STEPS = (
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
    # More verbs per operator, so an unseen verb is read by its meaning, not its amount.
    _step("use", "-", "food", "uses {amt} in a recipe", "used {amt} in a recipe", "uses {amt}"),
    _step("throw", "-", "food", "throws away {amt} that went bad", "threw away {amt} that went bad",
          "throws away {amt}"),
    _step("break", "-", "fragile", "breaks {amt}", "broke {amt}"),
    _step("hand_out", "-", _ANY, "hands out {amt}", "handed out {amt}"),
    _step("donate", "-", _ANY + " money", "donates {amt} to charity", "donated {amt} to charity",
          "donates {amt}"),
    _step("return", "-", "thing", "returns {amt} to the store", "returned {amt} to the store", "returns {amt}"),
    _step("lend", "-", "thing money", "lends {amt} to a friend", "lent {amt} to a friend", "lends {amt}"),
    _step("lose_cash", "-", "money", "loses {amt} on the way home", "lost {amt} on the way home",
          "loses {amt}"),
    _step("receive", "+", _ANY + " money", "receives {amt} from {pos} grandma",
          "received {amt} from {pos} grandma", "receives {amt}"),
    _step("win", "+", "thing money", "wins {amt} at the fair", "won {amt} at the fair", "wins {amt}"),
    _step("pick", "+", "pickable", "picks {amt} more", "picked {amt} more"),
    _step("get", "+", _ANY, "gets {amt} from a friend", "got {amt} from a friend", "gets {amt}"),
    _step("save", "+", "money", "saves {amt} from {pos} allowance", "saved {amt} from {pos} allowance",
          "saves {amt}"),
    _step("quadruple", "*", _ANY + " money", "quadruples {pos} {thing}", "quadrupled {pos} {thing}",
          "quadruples {them}", factor=4),
    _step("sell", "*", _ANY, "sells the rest for ${n} each", "sold the rest for ${n} each",
          terse="sells rest for ${n}", final="sell", questions=_SELL_Q),
    _step("split", "/", _ANY + " money", "splits {them} equally among {n} friends",
          "split {them} equally among {n} friends", terse="splits {them} among {n} friends",
          final="split", questions=_SPLIT_Q),
    _step("sell_market", "*", _ANY, "sells the rest at the market for ${n} each",
          "sold the rest at the market for ${n} each", terse="sells rest at market for ${n} each",
          final="sell", questions=_SELL_Q),
    _step("divide", "/", _ANY + " money", "divides {them} equally among {n} cousins",
          "divided {them} equally among {n} cousins", terse="divides {them} among {n} cousins",
          final="split", questions=_COUSIN_Q),
    _step("pack", "/", _ANY, "packs {them} equally into {n} bags", "packed {them} equally into {n} bags",
          terse="packs {them} into {n} bags", final="split", questions=_BAG_Q),
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
    "wp:train:4": "full", "wp:train:5": "full", "wp:train:6": "terse", "wp:train:7": "full",
    "wp:train:8": "full",
    "wp:heldout:0": "held", "wp:heldout:1": "when", "wp:heldout:2": "held", "wp:heldout:3": "held",
}
TEMPLATES = Split(
    "templates",
    templates("wp:train:", [
        "{Name} has {start}. {Pr} {present}. {question}",
        "{Name} has {start}, {terse}. {question}",
        "{Name} starts with {start}. {sentences} {question}",
        "{Name} has {start} and {present}. {question}",
        # The name away from the front, so the model learns the entity is the counted noun.
        "At first, {Name} owns {start}. {Pr} {present}. {question}",
        "{Name} keeps {start} in a {container}. During the day {pr} {present}. {question}",
        "Suppose {pr} has {start}: {Name} {terse}. {question}",
        "{Name} got {start} yesterday. Today {pr} {present}. {question}",
        # Past-tense verbs are the same operators ("lent" is "lends"); without a train template that
        # uses them, only the held-out "If ... had" template did, and the router mis-signed them.
        "Last week {Name} had {start}. Since then {pr} {past}. {question}",
    ]),
    templates("wp:heldout:", [
        "There are {start} in {Name}'s {container}. {Pr} {present}. {question}",
        "If {Name} had {start} and {past}, {question}",
        "Starting with {start}, {Name} {present}. {question}",
        "{Name}'s {container} holds {start}. Over the week {pr} {present}. {question}",
    ]),
)

# Inclusive (low, high) bands per number kind. Train pairs a low band with one beyond the held-out
# band, so it has every digit length held-out has without ever drawing a held-out value.
_RANGES = {
    "train": dict(start=((10, 60), (401, 999)), money=((20, 100), (501, 999)), amount=((1, 9), (41, 99)),
                  price=((2, 5), (16, 30)), divisor=((2, 6), (13, 20)), steps=4),
    "heldout": dict(start=((61, 400),), money=((101, 500),), amount=((10, 40),), price=((6, 15),),
                    divisor=((7, 12),), steps=4),
}
#: Share of train problems about money (train has many more non-money nouns than held-out).
_TRAIN_MONEY_SHARE = 0.1


def _band(rng: random.Random, bands: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """One of ``bands`` at random; a lone band draws nothing (held-out streams stay as they were)."""
    return bands[0] if len(bands) == 1 else rng.choice(bands)


def _number(rng: random.Random, bands: tuple[tuple[int, int], ...]) -> int:
    return rng.randint(*_band(rng, bands))


def _join(parts: list[str], last: str = " and ") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + last + parts[-1]


def _plan(rng: random.Random, split: str, entity: Entity) -> tuple[int, list[tuple[Step, int]]]:
    ranges = _RANGES["heldout" if split == "heldout" else "train"]
    usable = [s for s in STEPS if s.kinds & entity.kinds]
    ordinary = [s for s in usable if not s.final]
    value = _number(rng, ranges["money" if entity.money_format else "start"])
    start, plan = value, []
    for _ in range(rng.randint(1, ranges["steps"])):
        step = rng.choice([s for s in ordinary if not plan or s is not plan[-1][0]])
        fits = tuple(band for band in ranges["amount"] if band[0] <= value - 1)
        if step.op == "-" and fits:
            low, high = _band(rng, fits)
            amount = rng.randint(low, min(high, value - 1))
            value -= amount
        elif step.op == "+":
            amount = _number(rng, ranges["amount"])
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
            bands = list(ranges["divisor"])
            if len(bands) > 1:
                rng.shuffle(bands)
            divisors = []
            for low, high in bands:
                divisors = [d for d in range(low, high + 1) if value % d == 0]
                if divisors:
                    break
            if divisors:
                plan.append((step, rng.choice(divisors)))
                break
        else:
            plan.append((step, _number(rng, ranges["price"])))
            break
    if not plan:
        buy = next(s for s in ordinary if s.op == "+")
        plan.append((buy, _number(rng, ranges["amount"])))
    return start, plan


def compose(rng: random.Random, split: str) -> tuple[str, str, tuple[str, ...]]:
    """One word problem for ``split``: ``(query, spec, tags)``."""
    template: Template = TEMPLATES.choice(rng, split)
    if split == "heldout":
        entity = ENTITIES.choice(rng, split)
    else:
        money = rng.random() < _TRAIN_MONEY_SHARE
        entity = rng.choice([e for e in ENTITIES.items(split) if (e.money_format is not None) == money])
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
    connectors = ["Then", "Next,", "After that,", "Later,"]
    sentences = " ".join(f"{'Finally,' if i == len(plan) - 1 and i >= 3 else connectors[min(i, 3)]} "
                         f"{pronoun} {say(s, 'present', a)}." for i, (s, a) in enumerate(plan))
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


def sample_example(expert: WordProblemExpert, rng: random.Random, split: str) -> Example:
    """One word problem for ``split`` as an example of ``expert``."""
    return expert.example(*compose(rng, split))


def pool_ids(expert: WordProblemExpert, split: str) -> dict[str, frozenset[str]]:
    """The ids of the pools :func:`compose` draws from for ``split``, by kind."""
    return ids_by_kind([TEMPLATES, ENTITIES, NAMES], split)
