"""The schedule expert: ``<name>:<num>hr[,...] | <constraint>[,...]``.

A duration is written in hours (``1.5hr``) or minutes (``30min``), as the request
states it; the expert converts. Tasks run back to back in spec order from 9:00, or from a ``start:H`` /
``start:H:MM`` constraint. ``no_overlap`` and ``sequential`` both hold for such
a plan and do not change it. A plan that would end after 24:00 is a
:class:`LimitError`; ending exactly at midnight is written ``24``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal

from .base import (
    MAX_TASKS,
    Expert,
    ExpertError,
    HostAction,
    LimitError,
    SpecSyntaxError,
    require_spec,
)
from .numbers import NUMBER_PATTERN, format_number, one_of, parse_number
from .vocabulary import WORD, SpecVocabulary, copy_vocabulary, query_numbers

DAY_MINUTES = 24 * 60
DEFAULT_START = 9 * 60
_TASK = re.compile(rf"([A-Za-z][A-Za-z0-9_' -]*?)\s*:\s*({NUMBER_PATTERN})\s*(hr|min)")
#: A duration's units in a spec: hours, and minutes (``lunch:30min``, as "lunch (30 min)" writes it).
UNITS = ("hr", "min")


def _start_pattern(hours: str = "[0-9]{1,2}") -> str:
    """``start:H`` or ``start:H:MM``, the hour matching ``hours``."""
    return rf"start\s*:\s*({hours})(?::([0-9]{{2}}))?"


_START = re.compile(_start_pattern())
FLAGS = ("no_overlap", "sequential")
#: A task name as the decoder lets the router write it (the parser takes more): words of letters
#: (``_'`` inside them, ``-`` between letters), none a grammar word. With any name the parser takes,
#: a router denied its ``|`` wrote "Tara LASTING 4hr - no_overlap - no_overlap ..." as one task
#: name, and with digits inside words "your-4hr and Stefan"; with grammar words after a hyphen, "from
#: in-start-start-start ..." until cut off.
_NAME_PART = rf"(?!(?i:{'|'.join(FLAGS)}|start|{'|'.join(UNITS)})\b)[A-Za-z][A-Za-z_']*"
_NAME_WORD = rf"{_NAME_PART}(?:-{_NAME_PART})*"


def _named_task(durations: dict[str, str]) -> str:
    """``name:Nhr`` or ``name:Nmin``: for each unit of ``durations``, a number matching its pattern."""
    lengths = "|".join(rf"(?:{numbers})\s*{unit}" for unit, numbers in durations.items())
    return rf"{_NAME_WORD}(?: {_NAME_WORD})*\s*:\s*(?:{lengths})"
#: The words after a number that make it a duration, by the unit a spec writes it in ("2 hours"
#: is ``2hr``, "30 minutes" ``30min``).
UNIT_WORDS = {"hr": frozenset({"h", "hr", "hrs", "hour", "hours"}),
              "min": frozenset({"min", "mins", "minute", "minutes"})}


@dataclass(frozen=True)
class Plan:
    tasks: tuple[tuple[str, int], ...]
    flags: tuple[str, ...]
    start: int | None

    @property
    def first_minute(self) -> int:
        return DEFAULT_START if self.start is None else self.start


def clock(minute: int) -> str:
    """``9`` on the hour, ``10:30`` otherwise."""
    hours, minutes = divmod(minute, 60)
    return str(hours) if minutes == 0 else f"{hours}:{minutes:02d}"


def spec_pattern(starts: tuple[str, ...] | None = None, durations: dict[str, tuple[str, ...]] | None = None) -> str:
    """The spec grammar; with ``starts``, a start hour is one of them (``()``: no start); with
    ``durations`` (numbers by unit), a task's duration is one of them, in its unit."""
    constraints = list(FLAGS)
    if starts is None:
        constraints.append(_START.pattern)
    elif starts:
        constraints.append(_start_pattern(one_of(starts)))
    lengths = ({unit: NUMBER_PATTERN for unit in UNITS} if durations is None
               else {unit: one_of(numbers) for unit, numbers in durations.items() if numbers})
    task = _named_task(lengths)
    # Each kind at most once, in any order: a router denied the start it wanted wrote "no_overlap,
    # no_overlap, ..." until cut off.
    orders = (r"\s*,\s*".join(f"(?:{c})" for c in order)
              for k in range(1, len(constraints) + 1) for order in itertools.permutations(constraints, k))
    return rf"{task}(?:\s*,\s*{task})*\s*\|\s*(?:{'|'.join(orders)})"


SPEC_PATTERN = spec_pattern()


def stated_numbers(query: str) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """``(durations, others)``: the query's numbers (digits, or number words as digits) that a
    unit word follows, by unit, and the rest."""
    durations: dict[str, list[str]] = {unit: [] for unit in UNIT_WORDS}
    others = []
    for number in query_numbers(query):
        unit = next((unit for unit, words_of in UNIT_WORDS.items() if number.after in words_of), None)
        (durations[unit] if unit else others).append(min(number.spellings))
    return {unit: tuple(numbers) for unit, numbers in durations.items()}, tuple(others)


def unit_words(query: str) -> tuple[str, ...]:
    """The query's unit words after a number, as it writes them: the spec writes them as its unit
    ("2 hours" is ``2hr``), never as a task's name."""
    matches = list(WORD.finditer(query))
    every = frozenset().union(*UNIT_WORDS.values())
    return tuple(m.group() for before, m in zip(matches, matches[1:])
                 if before.group()[0].isdigit() and m.group().casefold() in every)


def _task(text: str) -> tuple[str, int]:
    match = _TASK.fullmatch(text.strip())
    if not match:
        raise SpecSyntaxError(f"bad task {text.strip()[:40]!r}; expected '<name>:<num>hr' or '<name>:<num>min'")
    amount = parse_number(match.group(2))
    if amount <= 0:
        raise SpecSyntaxError("task durations must be positive")
    minutes = amount * 60 if match.group(3) == "hr" else amount
    if minutes != minutes.to_integral_value():
        raise SpecSyntaxError("task durations must be whole minutes")
    if minutes > DAY_MINUTES:
        raise LimitError("a task longer than a day")
    return " ".join(match.group(1).split()), int(minutes)


def parse_spec(spec: str) -> Plan:
    text = require_spec(spec)
    parts = text.split("|")
    if len(parts) != 2:
        raise SpecSyntaxError("schedule expects '<tasks> | <constraints>'")
    task_texts = parts[0].split(",")
    if len(task_texts) > MAX_TASKS:
        raise LimitError(f"more than {MAX_TASKS} tasks")
    tasks = tuple(_task(t) for t in task_texts)
    flags: list[str] = []
    start = None
    for item in (c.strip() for c in parts[1].split(",")):
        if item in FLAGS:
            flags.append(item)
            continue
        match = _START.fullmatch(item)
        if not match:
            raise SpecSyntaxError(f"unknown constraint {item[:40]!r}")
        if start is not None:
            raise SpecSyntaxError("more than one start constraint")
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if hour > 23 or minute > 59:
            raise SpecSyntaxError(f"bad start time {item!r}")
        start = hour * 60 + minute
    return Plan(tasks, tuple(flags), start)


def _duration(minutes: int) -> str:
    """A task's duration in canonical form: in hours where they are exact in at most two
    decimals (every whole minute count divisible by 3: ``30`` -> ``0.5hr``), else in minutes
    (``20`` -> ``20min``); ``lunch:30min`` and ``lunch:0.5hr`` are the same plan."""
    if minutes % 3 == 0:
        return f"{format_number(Decimal(minutes) / 60)}hr"
    return f"{minutes}min"


class ScheduleExpert(Expert):
    name = "schedule"
    description = "tasks back to back from 9:00: 'schedule: Alice:2hr,Bob:1hr | no_overlap'"
    train_weight = 1.6  # up to four names and durations, and constraints, to get right
    calibration_prompts = (
        "Schedule Alice (2hr) and Bob (1hr), no overlap",
        "Plan my day: gym for 1 hour, lunch for 1.5 hours, one after another.",
        "Make a schedule for study (2hr), lunch (1hr) and reading (1hr), back to back.",
        "Schedule a meeting (1hr) and email (0.5hr), starting at 10",
        "Can you schedule Carol (1hr), Dave (2hr) and Eve (1hr) with no overlap?",
        "Book yoga for 1 hour and cooking for 2 hours, in sequence, from 8:30.",
        "Schedule coding (3hr) and laundry (1hr), sequentially",
        "Plan my day: shopping for 2 hours and lunch for 1 hour, no overlapping.",
        "Make a schedule for Frank (1.5hr) and Hannah (2hr), starting at 13",
        "Schedule gym (1hr), study (2hr), lunch (1hr) and call (0.5hr), no overlap",
    )

    def execute(self, spec: str) -> str:
        plan = parse_spec(spec)
        minute, slots = plan.first_minute, []
        for name, length in plan.tasks:
            end = minute + length
            if end > DAY_MINUTES:
                raise LimitError("the schedule runs past 24:00")
            slots.append(f"{name}:{clock(minute)}-{clock(end)}")
            minute = end
        return ",".join(slots)

    def canonical_spec(self, spec: str) -> str:
        try:
            plan = parse_spec(spec)
        except ExpertError:
            return super().canonical_spec(spec)
        tasks = ",".join(f"{name}:{_duration(m)}" for name, m in plan.tasks)
        constraints = sorted(set(plan.flags))
        if plan.start is not None:
            constraints.append(f"start:{clock(plan.start)}")
        return f"{tasks} | {','.join(constraints)}"

    def host_action(self, spec: str) -> HostAction:
        parse_spec(spec)
        return HostAction("schedule", "execute", {"spec": " ".join(spec.split())})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        # A task's duration is a number the query states with a unit ("2 hours", "30 min"), in that
        # unit; a start hour is any other number. A request that states no duration is no schedule.
        durations, starts = stated_numbers(query)
        if not any(durations.values()):
            return SpecVocabulary("never")
        # Every duration is a task's: all of them come before the ``|`` (a router left the last
        # of a long list out of one plan in eight of the generated calib split).
        # Its ordering rules are what a plan means, so both decoding modes keep them: the tasks in
        # the query's order, and a start the request gives used, after the ``|``. A number without
        # a unit is a start the plan must use only where it ends its clause ("from 9", "at 11:30.");
        # one the clause goes on from is a count of something else ("in under 20 words").
        written = [n for n in query_numbers(query) if n.required]  # in digits
        late = frozenset(starts) & {min(n.spellings) for n in written}
        optional = frozenset(starts) - {min(n.spellings) for n in written if n.ends_clause}
        # Task names come back in the plan as written: "Tara", not "tara".
        return copy_vocabulary(query, *UNITS, "start", *FLAGS, pattern=spec_pattern(starts, durations),
                               case_sensitive=True, needs_number=True, reserved=unit_words(query),
                               copies_all=tuple(n for numbers in durations.values() for n in numbers),
                               copies_all_by="|", copies_all_items_by=",", numbers="all", numbers_mark="|",
                               late_numbers=late, optional_numbers=optional,
                               ordered=True, rules_are_meaning=True)

    few_shot_specs = (
        ("Schedule Alice (2hr) and Bob (1hr), no overlap", "Alice:2hr,Bob:1hr | no_overlap"),
        ("Plan my day: gym for 1 hour, lunch for 1.5 hours, one after another.", "gym:1hr,lunch:1.5hr | sequential"),
        ("Schedule a meeting (1hr) and email (0.5hr), starting at 10", "meeting:1hr,email:0.5hr | start:10"),
    )

