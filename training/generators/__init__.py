"""Synthetic queries of the built-in experts: one generator module per expert family.

A generator draws a query with its gold spec for a split (``train``, ``calib``, ``heldout``) from
split-aware pools (:mod:`.sampling`): templates, entities, names, places and number ranges whose
``heldout`` part never occurs in ``train``. The runtime experts (``lazarus_cot_router.experts``)
parse and execute specs; they never import this package.

:func:`sample_example` and :func:`pool_ids` dispatch on the expert's class: a built-in expert (or
a subclass that does not implement the method itself) gets its generator here, any other expert
its own :meth:`~lazarus_cot_router.experts.base.Expert.sample_example` /
:meth:`~lazarus_cot_router.experts.base.Expert.pool_ids`, through which a plugin offers training
examples.
"""

from __future__ import annotations

import random
from types import ModuleType

from lazarus_cot_router.experts.arithmetic import AddExpert, DivideExpert, MultiplyExpert, SubtractExpert
from lazarus_cot_router.experts.base import Example, Expert
from lazarus_cot_router.experts.chat import ChatExpert
from lazarus_cot_router.experts.schedule import ScheduleExpert
from lazarus_cot_router.experts.time import TimeExpert
from lazarus_cot_router.experts.word_problem import WordProblemExpert

from . import arithmetic, chat, schedule, time, word_problem

_GENERATORS: tuple[tuple[type[Expert], ModuleType], ...] = (
    (MultiplyExpert, arithmetic), (AddExpert, arithmetic), (SubtractExpert, arithmetic),
    (DivideExpert, arithmetic), (WordProblemExpert, word_problem), (ScheduleExpert, schedule),
    (TimeExpert, time), (ChatExpert, chat),
)


def sample_example(expert: Expert, rng: random.Random, split: str) -> Example:
    """One synthetic example of ``expert`` for ``split``: ``train`` and ``calib`` draw from the
    training pools, ``heldout`` only from pools that never occur in ``train``."""
    generator = _generator(expert, "sample_example")
    return generator.sample_example(expert, rng, split) if generator else expert.sample_example(rng, split)


def pool_ids(expert: Expert, split: str) -> dict[str, frozenset[str]]:
    """Ids of the pools :func:`sample_example` draws from for ``split``, by pool kind; for each
    kind, the ``heldout`` ids are disjoint from the ``train`` ids."""
    generator = _generator(expert, "pool_ids")
    return generator.pool_ids(expert, split) if generator else expert.pool_ids(split)


def _generator(expert: Expert, method: str) -> ModuleType | None:
    """The generator of ``expert``'s built-in class; ``None`` for an expert of no built-in class,
    or whose class implements ``method`` itself."""
    if getattr(type(expert), method, None) is not getattr(Expert, method):
        return None
    return next((module for cls, module in _GENERATORS if isinstance(expert, cls)), None)
