"""Split-aware pools for the synthetic query generators.

Every pool a generator samples from (templates, entities, names, cities, number
ranges) has a ``train`` part and a disjoint ``heldout`` part; ``calib`` draws
from ``train``. Pool items carry string ids so tests can check disjointness.
Operator vocabularies (word-problem verbs, schedule constraint phrases) are
plain tuples shared by both splits, like the words "plus" and "times".
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar

from lazarus_cot_router.experts.base import check_split

T = TypeVar("T")


@dataclass(frozen=True)
class Split(Generic[T]):
    """A pool of items of one kind, split into train and heldout parts."""

    kind: str
    train: tuple[T, ...]
    heldout: tuple[T, ...]

    def items(self, split: str) -> tuple[T, ...]:
        return self.heldout if check_split(split) == "heldout" else self.train

    def choice(self, rng: random.Random, split: str) -> T:
        return rng.choice(self.items(split))

    def sample(self, rng: random.Random, split: str, k: int) -> list[T]:
        return rng.sample(self.items(split), k)

    def ids(self, split: str) -> frozenset[str]:
        return frozenset(item_id(item) for item in self.items(split))


def item_id(item: object) -> str:
    """An item's id: its ``id`` attribute, a tuple's first field, else its text."""
    if isinstance(item, tuple) and item:
        return str(item[0])
    return str(getattr(item, "id", item))


@dataclass(frozen=True)
class Template:
    id: str
    text: str

    def fill(self, **values: str) -> str:
        return self.text.format(**values)


def templates(prefix: str, texts: Sequence[str]) -> tuple[Template, ...]:
    """Templates with ids ``<prefix><index>`` (stable as long as texts are only
    appended)."""
    return tuple(Template(f"{prefix}{index}", text) for index, text in enumerate(texts))


def _digest(salt: str, item: str) -> bytes:
    return hashlib.sha256(f"{salt}:{item}".encode()).digest()


def split_by_hash(items: Sequence[str], salt: str, heldout_share: float = 0.2) -> Split[str]:
    """Split a long list of names into train/heldout by a stable hash of each
    name (independent of order, of other names and of Python's hash seed)."""
    train, heldout = [], []
    for item in items:
        (heldout if _digest(salt, item)[0] < 256 * heldout_share else train).append(item)
    return Split(salt, tuple(train), tuple(heldout))


def split_by_rank(items: Sequence[str], salt: str, every: int = 4) -> Split[str]:
    """Split a short list so both parts are non-empty: order by a stable hash
    and put every ``every``-th item in heldout."""
    ranked = sorted(items, key=lambda item: _digest(salt, item))
    heldout = {item for index, item in enumerate(ranked) if index % every == every - 1}
    return Split(salt, tuple(i for i in items if i not in heldout), tuple(i for i in items if i in heldout))


def ids_by_kind(pools: Sequence[Split], split: str) -> dict[str, frozenset[str]]:
    """The ids of each of ``pools`` for ``split``, by pool kind."""
    return {pool.kind: pool.ids(split) for pool in pools}
