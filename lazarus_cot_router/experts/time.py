"""The time expert: the spec is an IANA zone or a place name copied from the query.

``answer`` and ``canonical_spec`` are the resolved zone (clock-independent), so
``Tokyo`` and ``Asia/Tokyo`` count the same; ``execute`` reads an injectable
clock and writes ``HH:MM <abbr>``.
"""

from __future__ import annotations

import functools
import random
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from .base import Example, Expert, ExpertError, HostAction, UnknownZoneError, require_spec
from .places import (
    MAX_PLACE_CHARS,
    US_STATES,
    ZONE_ABBREVIATIONS,
    ZONE_WORDS,
    city_names,
    country_names,
    place_index,
    place_zones,
    resolve_zone,
    trim_place,
)
from .sampling import Split, split_by_hash, split_by_rank, templates
from .vocabulary import SpecVocabulary

Clock = Callable[[], datetime]

PINNED_TRAIN = ("Tokyo", "London", "New York", "Paris", "Sydney", "Mumbai", "Berlin", "Los Angeles")

TEMPLATES = Split(
    "templates",
    templates("time:train:", [
        "What time is it in {place}?", "Current time in {place}", "Time in {place}",
        "time in {place} right now", "What's the time in {place}?", "what time is it in {place}",
        "Tell me the time in {place}.", "What is the current time in {place}?", "Local time in {place}?",
        "{place} time now", "What time is it now in {place}?", "current time {place}",
    ]),
    templates("time:heldout:", [
        "what's the clock in {place}", "local time {place}", "Do you know what time it is over in {place}?",
        "I'm calling someone in {place}, what time is it there?", "Give me the hour in {place}.",
        "How late is it in {place} at the moment?", "{place}: current local time?",
    ]),
)


#: US states as users name them ("what time is it in florida"); not bare "Washington" (the
#: city) nor "Georgia" (the country).
STATES = split_by_rank(sorted(name for name, _ in US_STATES.values()
                              if name not in ("Washington", "District of Columbia", "Georgia")), "states")
#: The zone names most asked for (US zones, UTC, GMT): always train, like :data:`PINNED_TRAIN`.
PINNED_ZONES = ("Eastern", "Central", "Mountain", "Pacific", "EST", "CST", "MST", "PST", "UTC", "GMT")


def _zone_names() -> Split[str]:
    """Time zones named without a place: zone words ("Eastern", "Atlantic") and abbreviations
    ("EST", "PST"), written with a word that makes them a zone (see :data:`ZONE_FORMS`)."""
    names = sorted({w.title() for w in ZONE_WORDS if " " not in w and "-" not in w and w != "universal"}
                   | {a.upper() for a in ZONE_ABBREVIATIONS})
    ranked = split_by_rank(names, "zone_names")
    heldout = tuple(n for n in ranked.heldout if n not in PINNED_ZONES)
    return Split("zone_names", tuple(n for n in names if n not in heldout), heldout)


ZONE_NAMES = _zone_names()
#: How a query writes a named zone (``{z}``); shared by both splits, like operator words. A bare
#: abbreviation ("in EST") is a zone too; a zone word needs its word ("Eastern time").
ZONE_FORMS = ("{z} time", "the {z} time zone", "{z} timezone", "the {z} timezone", "{z} standard time",
              "the {z} standard time zone", "{z} time zone")
ABBREVIATION_FORMS = ("{z}", "{z}", "{z} time", "the {z} time zone", "the {z} timezone")
#: Of each split's time queries: the share naming a country, a US state and a named zone
#: (the rest name a city).
KIND_SHARES = (("country", 0.1), ("state", 0.04), ("zone", 0.06))


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@functools.lru_cache(maxsize=1)
def place_pools() -> tuple[Split[str], Split[str]]:
    """Cities and countries, each split train/heldout by a stable name hash;
    the :data:`PINNED_TRAIN` cities (public examples) are always train."""
    cities = split_by_hash(city_names(), "cities")
    pinned = tuple(p for p in PINNED_TRAIN if p not in cities.train)
    cities = Split("cities", pinned + cities.train, tuple(c for c in cities.heldout if c not in pinned))
    taken = set(city_names()) | set(PINNED_TRAIN)
    return cities, split_by_hash([c for c in country_names() if c not in taken], "countries")


class TimeExpert(Expert):
    name = "time"
    description = "current time in a place or IANA zone: 'time: Tokyo'"
    # Its queries look like chat about places and time zones (the hard negatives); with fewer
    # examples than chat, held-out time queries went to chat (50% routed right, from 95%).
    train_weight = 1.3
    system_prompt_example = ("Time in Tokyo", "Tokyo")
    calibration_prompts = (
        "Current time in Tokyo", "What time is it in London?", "What time is it in New York?",
        "Time in Paris", "What's the time in Sydney right now?", "Tell me the time in Mumbai.",
        "What is the current time in Berlin?", "Local time in Los Angeles?", "time in Cairo right now",
        "What time is it in Singapore?", "Current time in Asia/Tokyo",
    )

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or _utc_now

    def prepare(self) -> None:
        place_index()  # GeoNames' cities: about 3 s to build, then every lookup is a dictionary hit

    def zone(self, spec: str) -> str:
        place = require_spec(spec)
        if not place:
            raise UnknownZoneError("empty place")
        if len(place) > MAX_PLACE_CHARS:
            raise UnknownZoneError("place name too long")
        return resolve_zone(place)

    def execute(self, spec: str) -> str:
        zone = ZoneInfo(self.zone(spec))
        now = self.clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.astimezone(zone).strftime("%H:%M %Z")

    def check_spec(self, spec: str) -> None:
        self.zone(spec)

    def answer(self, spec: str) -> str:
        return self.zone(spec)

    def canonical_spec(self, spec: str) -> str:
        try:
            return self.zone(spec)
        except ExpertError:
            return super().canonical_spec(spec)

    def host_action(self, spec: str) -> HostAction:
        return HostAction("time", "get_time", {"timezone": self.zone(spec)})

    def spec_vocabulary(self, query: str) -> SpecVocabulary:
        # The spec is a place the query names ("Caxias do Sul", not "Auf Deutsch"), or the IANA zone
        # of one ("America/Sao_Paulo"). A query that names no place is no request this expert can
        # answer: the router wrote a zone of its own ("atlantic/stanley" for "tell me what time it is").
        places = place_zones(query)
        if not places:
            return SpecVocabulary("never")
        return SpecVocabulary("choice", phrases=frozenset(places) | frozenset(places.values()))

    def sample_example(self, rng: random.Random, split: str) -> Example:
        cities, countries = place_pools()
        template = TEMPLATES.choice(rng, split)
        draw, kind = rng.random(), "city"
        for name, share in KIND_SHARES:
            if draw < share:
                kind = name
                break
            draw -= share
        if kind == "zone":
            place = _zone_place(rng, split)
            if place.endswith(("time", "zone")):
                # Not "Eastern time time now": a template with no time word after the place.
                template = rng.choice([t for t in TEMPLATES.items(split) if "{place} time" not in t.text])
        else:
            place = {"country": countries, "state": STATES, "city": cities}[kind].choice(rng, split)
        query = template.fill(place=place)
        spec = trim_place(place) if kind == "zone" else place  # "the EST time zone": ``EST``
        return Example(query, self.name, spec, self.zone(spec), (f"template:{template.id}", f"place:{kind}"))

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        cities, countries = place_pools()
        return {"templates": TEMPLATES.ids(split), "cities": cities.ids(split), "countries": countries.ids(split),
                "states": STATES.ids(split), "zone_names": ZONE_NAMES.ids(split)}

    few_shot_specs = (("Current time in Tokyo", "Tokyo"), ("What time is it in London?", "London"),
                      ("Time in New York", "New York"))


def _zone_place(rng: random.Random, split: str) -> str:
    """A named zone as a query writes it ("the Pacific time zone", "eastern timezone", "EST")."""
    name = ZONE_NAMES.choice(rng, split)
    if name.isupper():
        form = rng.choice(ABBREVIATION_FORMS)
        name = name if rng.random() < 0.6 else name.lower()
    else:
        form = rng.choice(ZONE_FORMS)
        name = name if rng.random() < 0.5 else name.lower()
    return form.format(z=name)
