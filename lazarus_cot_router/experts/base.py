"""The contract every expert fulfils, built-in or third-party.

An expert turns a spec (the text between ``<expert>: `` and `` ->`` in a routing
line) into a result. It never evaluates code: each spec has a small grammar that
the expert parses itself, with bounds on sizes and magnitudes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .vocabulary import SpecVocabulary

MAX_SPEC_CHARS = 512
MAX_ABS_NUMBER = 1e15
MAX_OPS = 32
MAX_TASKS = 50


class ExpertError(Exception):
    """A spec that does not execute. ``reason`` is one short human sentence."""

    kind: ClassVar[str] = "error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SpecSyntaxError(ExpertError):
    """The spec does not follow the expert's grammar."""

    kind = "syntax"


class OperatorMismatchError(SpecSyntaxError):
    """An arithmetic spec whose operator belongs to another expert (``add: 3 * 4``)."""

    kind = "operator_mismatch"


class LimitError(ExpertError):
    """A bound is exceeded: spec length, |number| (operands and results),
    operation or task count, a schedule running past midnight."""

    kind = "limit"


class MathDomainError(ExpertError):
    """An undefined operation such as division by zero."""

    kind = "math"


class UnknownZoneError(ExpertError):
    """A time zone or place name that resolves to no IANA zone."""

    kind = "unknown_zone"


@dataclass(frozen=True)
class HostAction:
    """The part of the host's ``VirtualExpertAction`` an expert decides."""

    expert: str
    operation: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """One query with its gold routing.

    ``answer`` is what :meth:`Expert.answer` returns for the gold spec (a string,
    or ``None`` for experts without a checkable answer such as ``chat``); for the
    time expert it is the IANA zone, since the wall-clock result changes.
    ``tags`` records how the query was made (template id, extra instruction, ...)
    so evaluations can report subsets.
    """

    query: str
    expert: str
    spec: str
    answer: str | None
    tags: tuple[str, ...] = ()


SPLITS = ("train", "calib", "heldout")


def require_spec(spec: object, max_chars: int = MAX_SPEC_CHARS) -> str:
    """Return ``spec`` stripped, after the checks every expert makes first:
    text (else :class:`SpecSyntaxError`) of at most ``max_chars`` characters
    (else :class:`LimitError`), so no parser ever sees an unbounded input."""
    if not isinstance(spec, str):
        raise SpecSyntaxError(f"spec must be text, not {type(spec).__name__}")
    if len(spec) > max_chars:
        raise LimitError(f"spec longer than {max_chars} characters")
    return spec.strip()


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


class Expert:
    """Base class for experts. Subclasses set ``name`` and ``description`` and
    implement :meth:`execute` and :meth:`host_action`; a plugin may implement
    :meth:`sample_example` to offer training examples (the built-in experts'
    generators live in ``training.generators``, which the runtime never imports)."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Prompts that clearly belong to this expert, for hidden-state calibration.
    calibration_prompts: ClassVar[tuple[str, ...]] = ()
    #: ``(query, spec)`` shown in the router's system prompt, or ``None``.
    system_prompt_example: ClassVar[tuple[str, str] | None] = None
    #: Relative share of this expert's examples in the *training* split (evaluation splits keep
    #: equal shares): experts whose specs take several copied parts need more examples to learn.
    train_weight: ClassVar[float] = 1.0
    #: The least result this expert gives to a query it should take, or ``None`` (no bound).
    #: The rewriter takes a second opinion on a line whose result is below it (:meth:`gives_result`).
    least_result: ClassVar[float | None] = None
    #: Whether this expert's results are usually whole numbers. The rewriter takes a second
    #: opinion on a fractional one and prefers a whole result that sampled lines agree on
    #: (:meth:`usual_result`); with none, the fractional line stands.
    whole_results: ClassVar[bool] = False

    def prepare(self) -> None:
        """Load what the expert needs before its first call (an index, a table), so the
        first user's call does not pay for it. The rewriter calls it once when it is built."""

    def check_spec(self, spec: str) -> None:
        """Raise :class:`ExpertError` if ``spec`` is not valid for this expert.

        The default executes the spec; experts with side effects or slow
        execution override it with a pure grammar check."""
        self.execute(spec)

    def execute(self, spec: str) -> str:
        """Execute ``spec`` and return the result text written after ``->``."""
        raise NotImplementedError

    def answer(self, spec: str) -> str | None:
        """The clock-independent value an evaluation compares with the gold
        ``answer``. Defaults to :meth:`execute`."""
        return self.execute(spec)

    def gives_result(self, result: str) -> bool:
        """Whether ``result`` (what :meth:`execute` returned) is in the range of
        results this expert gives (:attr:`least_result`); a result that is not a
        number is left to :meth:`execute` to judge."""
        if self.least_result is None:
            return True
        try:
            return float(result) >= self.least_result
        except ValueError:
            return True

    def usual_result(self, result: str) -> bool:
        """Whether ``result`` is in range and, for an expert with :attr:`whole_results`,
        a whole number: the results a line needs no second opinion on."""
        if not self.gives_result(result):
            return False
        if not self.whole_results:
            return True
        try:
            return float(result).is_integer()
        except ValueError:
            return True

    def canonical_spec(self, spec: str) -> str:
        """A normal form of ``spec`` for spec-accuracy comparisons
        (whitespace-normalized by default)."""
        return " ".join(spec.split())

    def host_action(self, spec: str) -> HostAction:
        """Map a valid spec to the host framework's action fields."""
        raise NotImplementedError

    def sample_example(self, rng: random.Random, split: str) -> Example:
        """Draw one synthetic query for ``split`` (one of :data:`SPLITS`).

        Not implemented by default: a plugin may implement it to offer training
        examples (``training.generators.sample_example`` calls it for any expert
        without a built-in generator). ``train`` and ``calib`` should draw from
        training pools of templates, entities and number ranges; ``heldout``
        only from pools that never occur in ``train``."""
        raise NotImplementedError

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        """Ids of the pools (templates, entities, cities, number ranges, ...)
        that :meth:`sample_example` draws from for ``split``, by pool kind.
        For each kind, the ``heldout`` ids are disjoint from the ``train`` ids.
        Empty by default."""
        return {}

    def spec_vocabulary(self, query: str) -> "SpecVocabulary | None":
        """The words this expert's spec may use for ``query``, for
        copy-constrained decoding (see :mod:`.vocabulary`); ``None`` (the
        default) lets the model write any spec."""
        return None

    def example(self, query: str, spec: str, tags: tuple[str, ...] = ()) -> Example:
        """An :class:`Example` of this expert whose gold answer is ``spec``'s."""
        return Example(query, self.name, spec, self.answer(spec), tags)

    #: ``(query, spec)`` pairs for :meth:`few_shot_examples`; empty: three examples of
    #: :meth:`sample_example`.
    few_shot_specs: ClassVar[tuple[tuple[str, str], ...]] = ()

    def few_shot_examples(self) -> list[Example]:
        """A few fixed, representative examples (the few-shot baseline and the
        router's system prompt use them): :attr:`few_shot_specs`, else, for a
        plugin without them, three of its own :meth:`sample_example` train examples."""
        if self.few_shot_specs:
            return [self.example(q, s, ("few_shot",)) for q, s in self.few_shot_specs]
        rng = random.Random(f"few-shot:{self.name}")
        return [self.sample_example(rng, "train") for _ in range(3)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
