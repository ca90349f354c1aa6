"""The word_problem expert: ``<entity>:<num> | <op><num> [<op><num> ...]``.

The operations apply left to right to the starting quantity
(``eggs:16 | -3 -4 *2`` is ``(16 - 3 - 4) * 2 = 18``).
"""

from __future__ import annotations

import random
import re

from .base import (
    MAX_OPS,
    Example,
    Expert,
    ExpertError,
    HostAction,
    LimitError,
    SpecSyntaxError,
    require_spec,
)
from .numbers import NUMBER_PATTERN, apply, format_number, normalize_number, parse_number
from .sampling import pool_ids
from .vocabulary import SpecVocabulary, copy_vocabulary
from .word_problem_text import ENTITIES, NAMES, TEMPLATES, compose, step_operator_words

#: Money units and the symbol a query writes them with ("euros": "€").
MONEY_UNITS = {e.id: e.money_format.replace("{n}", "") for e in ENTITIES.train + ENTITIES.heldout if e.money_format}

_HEAD = re.compile(rf"([A-Za-z][A-Za-z0-9_ -]*?)\s*:\s*({NUMBER_PATTERN})\s*\|")
_OP = re.compile(rf"\s*([-+*/])\s*({NUMBER_PATTERN})")
SPEC_PATTERN = rf"{_HEAD.pattern}(?:{_OP.pattern})+"
#: The verbs' operators (see ``word_problem_text.STEPS``): decoding writes "finds 12" as ``+12``.
OPERATOR_WORDS = step_operator_words()


def parse_spec(spec: str) -> tuple[str, str, list[tuple[str, str]]]:
    """``(entity, start, [(op, number), ...])`` with number tokens as written."""
    text = require_spec(spec)
    head = _HEAD.match(text)
    if not head:
        raise SpecSyntaxError("word_problem expects '<entity>:<num> | <op><num> ...'")
    ops: list[tuple[str, str]] = []
    position = head.end()
    while position < len(text):
        match = _OP.match(text, position)
        if not match:
            if text[position:].strip():
                raise SpecSyntaxError(f"bad operation near {text[position:position + 20]!r}")
            break
        ops.append(match.groups())
        if len(ops) > MAX_OPS:
            raise LimitError(f"more than {MAX_OPS} operations")
        position = match.end()
    if not ops:
        raise SpecSyntaxError("word_problem needs at least one operation after '|'")
    return " ".join(head.group(1).split()), head.group(2), ops


class WordProblemExpert(Expert):
    name = "word_problem"
    description = "a quantity changed step by step: 'word_problem: eggs:16 | -3 -4 *2'"
    train_weight = 1.6  # a start and up to five signed steps to get right
    calibration_prompts = (
        "Janet has 16 eggs, eats 3, bakes 4, sells rest for $2. How much?",
        "Tom has 20 apples. He gives away 5 and buys 8 more. How many apples does he have now?",
        "Maria has 12 cookies and eats 2. How many cookies are left?",
        "Sam has 30 marbles, loses 6, then finds 4. How many marbles does he have?",
        "Lucy has 24 stickers and splits them equally among 4 friends. How many does each friend get?",
        "Ben has $50. He spends $12 on lunch and earns $8. How much money does he have now?",
        "Emma has 9 books, buys 3 more and doubles her books. How many books does she have?",
        "Liam has 40 pencils. He gives away 10 and sells the rest for $2 each. How much money does he make?",
        "Olivia starts with 15 oranges. Then she eats 2. Next, she buys 7 more. How many oranges does she have now?",
        "Noah has 18 cards, loses 3, finds 5. How many left?",
    )

    def execute(self, spec: str) -> str:
        _, start, ops = parse_spec(spec)
        value = parse_number(start)
        for op, number in ops:
            value = apply(value, op, parse_number(number))
        return format_number(value)

    def canonical_spec(self, spec: str) -> str:
        try:
            entity, start, ops = parse_spec(spec)
            steps = " ".join(f"{op}{normalize_number(number)}" for op, number in ops)
            return f"{entity.lower()}:{normalize_number(start)} | {steps}"
        except ExpertError:
            return super().canonical_spec(spec)

    def host_action(self, spec: str) -> HostAction:
        parse_spec(spec)
        return HostAction("word_problem", "execute", {"spec": " ".join(spec.split())})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        # Money amounts are written "€40" / "40 euros"; the spec names the unit the query's symbol stands for.
        units = [unit for unit, symbol in MONEY_UNITS.items() if symbol in query]
        # Every step is a number the query states, in the order it states them ("triples" included):
        # a small router drops steps and reorders them far more often than a query skips one. A
        # number after one of the expert's verbs takes the verb's operator: the router wrote a gain
        # after a loss as another loss ("loses 12, receives 15" as -12 -15).
        return copy_vocabulary(query, *units, pattern=SPEC_PATTERN, needs_number=True, numbers="in_order",
                               operator_words=OPERATOR_WORDS)

    def sample_example(self, rng: random.Random, split: str) -> Example:
        return self.example(*compose(rng, split))

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        return pool_ids([TEMPLATES, ENTITIES, NAMES], split)

    few_shot_specs = (
        ("Janet has 16 eggs, eats 3, bakes 4, sells rest for $2. How much?", "eggs:16 | -3 -4 *2"),
        ("Tom has 20 apples. He gives away 5 and buys 8 more. How many apples does he have now?", "apples:20 | -5 +8"),
        ("Lucy has 24 stickers and splits them equally among 4 friends. How many does each friend get?",
         "stickers:24 | /4"),
    )
