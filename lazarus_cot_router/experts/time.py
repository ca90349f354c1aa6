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
from .places import MAX_PLACE_CHARS, city_names, country_names, place_zones, resolve_zone
from .sampling import Split, split_by_hash, templates
from .vocabulary import SpecVocabulary, copy_vocabulary

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


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@functools.lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """The IANA zone names a spec may use instead of a place: ``Area/Location``
    names ("America/New_York") and ``UTC``, not legacy links ("Greenwich",
    "Japan") nor the system's ``localtime``."""
    import zoneinfo

    return frozenset(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")) | {"UTC"}


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
        # of one ("America/Sao_Paulo"). A query naming no place this expert knows is copied freely.
        places = place_zones(query)
        if places:
            return SpecVocabulary("choice", phrases=frozenset(places) | frozenset(places.values()))
        return copy_vocabulary(query, phrases=zone_names())

    def sample_example(self, rng: random.Random, split: str) -> Example:
        cities, countries = place_pools()
        template = TEMPLATES.choice(rng, split)
        kind = "country" if rng.random() < 0.1 else "city"
        place = (countries if kind == "country" else cities).choice(rng, split)
        query = template.fill(place=place)
        return Example(query, self.name, place, self.zone(place), (f"template:{template.id}", f"place:{kind}"))

    def pool_ids(self, split: str) -> dict[str, frozenset[str]]:
        cities, countries = place_pools()
        return {"templates": TEMPLATES.ids(split), "cities": cities.ids(split), "countries": countries.ids(split)}

    few_shot_specs = (("Current time in Tokyo", "Tokyo"), ("What time is it in London?", "London"),
                      ("Time in New York", "New York"))
