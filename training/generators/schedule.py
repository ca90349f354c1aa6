"""Scheduling requests: tasks with durations and constraint phrases in sentence templates."""

from __future__ import annotations

import random
from decimal import Decimal

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.schedule import ScheduleExpert

from .pools import Split, ids_by_kind, templates

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


def sample_example(expert: ScheduleExpert, rng: random.Random, split: str) -> Example:
    """One scheduling request for ``split`` as an example of ``expert``."""
    return expert.example(*compose(rng, split))


def pool_ids(expert: ScheduleExpert, split: str) -> dict[str, frozenset[str]]:
    """The ids of the pools :func:`compose` draws from for ``split``, by kind."""
    return ids_by_kind([TEMPLATES, NAMES, ITEM_STYLES], split)
