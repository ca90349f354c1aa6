"""The schedule expert: ``<name>:<num>hr[,...] | <constraint>[,...]``.

A duration is written in hours (``1.5hr``) or minutes (``30min``), as the request
states it; the expert converts. Tasks run back to back in spec order from 9:00, or from a ``start:H`` /
``start:H:MM`` constraint. ``no_overlap`` and ``sequential`` both hold for such
a plan and do not change it. A plan that would end after 24:00 is a
:class:`LimitError`; ending exactly at midnight is written ``24``.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from decimal import Decimal

from .base import (
    MAX_TASKS,
    Example,
    Expert,
    ExpertError,
    HostAction,
    LimitError,
    SpecSyntaxError,
    require_spec,
)
from .numbers import NUMBER_PATTERN, format_number, one_of, parse_number
from .sampling import Split, pool_ids, templates
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
#: name, and with digits inside words "your-4hr and Stefan".
_NAME_WORD = rf"(?!(?i:{'|'.join(FLAGS)}|start|{'|'.join(UNITS)})\b)[A-Za-z][A-Za-z_']*(?:-[A-Za-z][A-Za-z_']*)*"


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
        # Ordering rules (``full`` decoding): every duration and start time is in the plan, the
        # tasks in the query's order, and the ``|`` after the last duration; a start hour the
        # query writes in digits comes after it.
        late = frozenset(starts) & {min(n.spellings) for n in query_numbers(query) if n.required}
        # Task names come back in the plan as written: "Tara", not "tara".
        return copy_vocabulary(query, *UNITS, "start", *FLAGS, pattern=spec_pattern(starts, durations),
                               case_sensitive=True, needs_number=True, numbers="all", numbers_mark="|",
                               late_numbers=late, reserved=unit_words(query), ordered=True)

    def sample_example(self, rng: random.Random, split: str) -> Example:
        return self.example(*compose(rng, split))

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        return pool_ids([TEMPLATES, NAMES, ITEM_STYLES], split)

    few_shot_specs = (
        ("Schedule Alice (2hr) and Bob (1hr), no overlap", "Alice:2hr,Bob:1hr | no_overlap"),
        ("Plan my day: gym for 1 hour, lunch for 1.5 hours, one after another.", "gym:1hr,lunch:1.5hr | sequential"),
        ("Schedule a meeting (1hr) and email (0.5hr), starting at 10", "meeting:1hr,email:0.5hr | start:10"),
    )


TEMPLATES = Split(
    "templates",
    templates("schedule:train:", [
        "Schedule {items}, {constraints}",
        "Plan my day: {items}, {constraints}.",
        "Make a schedule for {items}, {constraints}.",
        "Can you schedule {items} {constraints}?",
        "Book {items}, {constraints}",
        "schedule {items} {constraints}",
        "Please schedule {items}, {constraints}.",
        "I need to fit in {items}, {constraints}.",
        "Create a plan for {items}, {constraints}",
        "Set up my day with {items}, {constraints}.",
        "Could you plan {items} for me, {constraints}?",
        "Today I have {items}. Schedule them: {constraints}.",
    ]),
    templates("schedule:heldout:", [
        "Arrange {items}, {constraints}, please.",
        "Help me organize my afternoon: {items}, {constraints}.",
        "Put together a timetable with {items}, {constraints}",
        "Slot in {items} - {constraints}",
    ]),
)
NAMES = Split(
    "names",
    ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Hannah", "Ivan", "Julia", "Kevin", "Laura", "Mike",
     "gym", "lunch", "meeting", "email", "study", "reading", "coding", "shopping", "laundry", "yoga",
     "cooking", "call",
     # Many more names, so an unseen name is copied rather than swapped for a memorized one.
     "Aaron", "Bella", "Caleb", "Diana", "Elias", "Fiona", "George", "Helen", "Isaac", "Jasmine", "Kyle",
     "Lena", "Martin", "Nora", "Oscar", "Paula", "Rachel", "Simon", "Wendy", "Adam", "Beth", "Chris",
     "Derek", "Ella", "Gavin", "Irene", "Jake", "Kira", "Leo", "Maya", "Nathan", "Olga",
     "jogging", "breakfast", "dinner", "cleaning", "painting", "chores", "writing", "meditation", "biking",
     "running", "hiking", "baking", "nap", "podcast", "interview", "workout", "stretching", "guitar",
     "drawing", "knitting", "sewing", "planning", "budgeting", "vacuuming", "ironing", "walk", "tennis",
     "soccer", "chess", "lecture", "commute", "presentation", "research", "journaling", "tutoring",
     "shower"),
    ("Quinn", "Rosa", "Stefan", "Tara", "Uma", "Walter", "Xavier", "Yara",
     "piano", "dentist", "groceries", "standup", "review", "swim", "errands", "homework", "gardening"),
)
ITEM_STYLES = Split(
    "item_styles",
    ("{name} ({d}hr)", "{name} for {d} {hours}", "{name} ({d}h)", "{name}: {d}hr", "{name} ({d} {hours})",
     "{name} - {d}hr", "{name} taking {d} {hours}", "{name} for {d}hr",
     # The duration first, too, so the model copies the name whichever side it is on.
     "{d}hr of {name}", "{d} {hours} for {name}", "{d}h: {name}", "{name}, {d} {hours}",
     # Minutes as the request writes them ("lunch (30 min)": ``lunch:30min``); ``{m}`` is a
     # count of minutes (see ``_MINUTES``).
     "{name} ({m} min)", "{name} for {m} minutes", "{m} minutes of {name}"),
    ("{name} ({d} h)", "{name} lasting {d} {hours}", "{d} {hours} of {name}"),
)
# (id, constraint kind, phrase); ``{t}`` is a clock time as written in the spec.
# Like word-problem verbs, these are the request's operators: a vocabulary shared by train and
# held-out (held out, "kicking off at 13" lost its start:13). Held-out requests still use unseen
# templates, item styles, names and durations.
PHRASES = (
    ("overlap:0", "no_overlap", "no overlap"), ("overlap:1", "no_overlap", "with no overlap"),
    ("overlap:2", "no_overlap", "without overlapping"), ("overlap:3", "no_overlap", "no overlapping"),
    ("seq:0", "sequential", "one after another"), ("seq:1", "sequential", "back to back"),
    ("seq:2", "sequential", "in sequence"), ("seq:3", "sequential", "sequentially"),
    ("start:0", "start", "starting at {t}"), ("start:1", "start", "from {t}"),
    ("start:2", "start", "start at {t}"),
    ("overlap:4", "no_overlap", "with no overlaps"), ("overlap:5", "no_overlap", "so nothing overlaps"),
    ("overlap:6", "no_overlap", "without any overlap"), ("overlap:7", "no_overlap", "non-overlapping"),
    ("seq:4", "sequential", "one after the other"), ("seq:5", "sequential", "one by one"),
    ("seq:6", "sequential", "in order"), ("seq:7", "sequential", "in succession"),
    ("start:3", "start", "starting from {t}"), ("start:4", "start", "from {t} on"),
    ("start:5", "start", "with the first one at {t}"),
    ("overlap:h0", "no_overlap", "making sure none of them overlap"),
    ("overlap:h1", "no_overlap", "nothing at the same time"),
    ("seq:h0", "sequential", "consecutively"), ("seq:h1", "sequential", "in a row"),
    ("start:h0", "start", "beginning at {t}"), ("start:h1", "start", "kicking off at {t}"),
)
# Latest start (16:30) plus the longest plan must end before midnight.
MAX_PLAN_HOURS = 7
# Train has quarter hours too (1.75, 2.25, 2.75), never a held-out-only value (0.25, 0.75, 1.25, 3.5, 4).
_DURATIONS = {"train": ("0.5", "1", "1", "1.5", "2", "2", "2.5", "3", "1.75", "2.25", "2.75", "4.5", "5"),
              "heldout": ("0.25", "0.75", "1", "1.25", "1.5", "2", "3.5", "4")}
#: Task durations in minutes for the minute item styles (train only: held-out has none).
_MINUTES = ("10", "15", "20", "25", "30", "30", "40", "45", "45", "50", "60", "75", "90", "100", "120")
_COMBOS = (("no_overlap",), ("sequential",), ("start",), ("no_overlap", "start"), ("sequential", "start"))


def _start_time(rng: random.Random, split: str) -> tuple[str, int]:
    hours = range(13, 17) if split == "heldout" else range(6, 13)
    # Train also starts at 17:00 (an afternoon hour outside held-out's 13-16:30; 17 + 7h ends at 24).
    extra = [] if split == "heldout" else [(17, 0)]
    hour, minute = rng.choice([(h, m) for h in hours for m in (0, 0, 30)] + extra)
    text = f"{hour}:{minute:02d}" if minute else str(hour)
    return text, hour * 60 + minute


def compose(rng: random.Random, split: str) -> tuple[str, str, tuple[str, ...]]:
    """One scheduling request for ``split``: ``(query, spec, tags)``."""
    template = TEMPLATES.choice(rng, split)
    names = NAMES.sample(rng, split, rng.randint(2, 4))
    pool = _DURATIONS["heldout" if split == "heldout" else "train"]
    durations = [rng.choice(pool) for _ in names]
    while sum(Decimal(d) for d in durations) > MAX_PLAN_HOURS:
        durations = [rng.choice(pool) for _ in names]
    style = ITEM_STYLES.choice(rng, split)
    units = ["hr"] * len(names)
    if "{m}" in style:
        durations, units = [rng.choice(_MINUTES) for _ in names], ["min"] * len(names)
        while sum(int(m) for m in durations) > MAX_PLAN_HOURS * 60:
            durations = [rng.choice(_MINUTES) for _ in names]
    items = [style.format(name=n, d=d, m=d, hours="hour" if d == "1" else "hours") for n, d in zip(names, durations)]
    phrases, constraints, used = [], [], []
    for kind in rng.choice(_COMBOS):
        phrase_id, _, phrase = rng.choice([p for p in PHRASES if p[1] == kind])
        if kind == "start":
            time_text, _ = _start_time(rng, split)
            phrase, kind = phrase.format(t=time_text), f"start:{time_text}"
        phrases.append(phrase)
        constraints.append(kind)
        used.append(phrase_id)
    joined = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    query = template.fill(items=joined, constraints=" and ".join(phrases))
    spec = ",".join(f"{n}:{d}{u}" for n, d, u in zip(names, durations, units)) + " | " + ",".join(constraints)
    tags = (f"template:{template.id}",) + tuple(f"phrase:{p}" for p in used)
    return query, spec, tags
