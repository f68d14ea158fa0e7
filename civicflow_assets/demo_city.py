"""A seeded, fictional demo city written in exactly the formats of the real Socrata exports.

The real Chattanooga/Boston files in ``../shared/data`` cannot ship with the project, so this module
generates "Civicton", a made-up city in a made-up county of East Tennessee, with the same relative
paths pattern, CSV headers and value formats (timestamps, WKT, ids, sentinels) as the real files, so
that the same landing mappings load both. The real files' known quirks are reproduced at realistic
rates: the legacy 311 system slice, the bogus Arkansas location, blank locations, inconsistent
department names, renamed budget departments, "#Missing" and "(X)" sentinels, mixed-case ledger
period names.

Every artefact draws from its own random stream derived from ``seed``, so the map, the census and
the budgets do not change when only the number of requests changes, and the same arguments always
give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import string
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from math import cos, radians
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from numpy.dtypes import StringDType

TEXT = StringDType()
Geometries = shapely.Geometry | np.ndarray  # one geometry or an array of them

CITY_NAME = "Civicton"
COUNTY_NAME = "Civic County"
STATE_NAME = "Tennessee"
STATE_FIPS = "47"
# Tennessee county FIPS codes are all odd, so an even code cannot be mistaken for a real county;
# the leading zero keeps the real files' "065" vs "65" inconsistency reproducible.
COUNTY_FIPS = "098"
AREA_CODE = "423"

LON0, LAT0 = -84.9, 35.4
KM_PER_DEG_LAT = 110.95
KM_PER_DEG_LON = 111.32 * cos(radians(LAT0))
GRID_DEG = 1e-6
WEB_MERCATOR_RADIUS_M = 6_378_137.0
SQ_KM_TO_ACRES = 247.105381

# The placeholder geocode of the real exports, verbatim (a point in Arkansas).
BOGUS_LOCATION = "POINT (-92.508665380305 34.153465657529)"

POTHOLES_FILE = "311/potholes_distressed_pavement_demo.csv"
DEPARTMENT_FILE = "311/sidewalks_with_department_demo.csv"
ODOR_FILE = "311/odor_complaints_demo.csv"
REQUEST_FILE_SHARES = {POTHOLES_FILE: 0.80, DEPARTMENT_FILE: 0.15, ODOR_FILE: 0.05}

CHUNK_ROWS = 100_000
SECONDS_PER_DAY = 86_400


def _epoch_day(iso_date: str) -> int:
    return int(np.datetime64(iso_date, "D").astype(np.int64))


def _epoch_second(iso_timestamp: str) -> int:
    return int(np.datetime64(iso_timestamp, "s").astype(np.int64))


LEGACY_FIRST_DAY = _epoch_day("2003-02-10")
LEGACY_LAST_DAY = _epoch_day("2016-12-20")
MODERN_FIRST_DAY = _epoch_day("2016-11-01")
EXTRACTED_AT = _epoch_second("2024-09-24T20:30:00")
# The legacy system closed its backlog in one batch on this day (1,637 real rows share it).
BULK_CLOSURE_AT = _epoch_day("2013-08-01") * SECONDS_PER_DAY
MODERN_FIRST_KEY, MODERN_LAST_KEY = 2_180_000, 16_010_000
LEGACY_KEYS_PER_YEAR = 125_000


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per artefact, so one artefact's size never shifts another."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


# --------------------------------------------------------------------------------------------
# Geography
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracts:
    codes: np.ndarray  # 6-digit tract codes (str)
    geoms: np.ndarray  # shapely Polygons, lon/lat
    population: np.ndarray  # ACS 2017 total population (0 for the special 98xx tracts)
    deprivation: np.ndarray  # standardised latent score: high = poorer


@dataclass(frozen=True)
class Geography:
    city: shapely.Polygon
    tracts_2010: Tracts
    tracts_2020_codes: np.ndarray
    tracts_2020_geoms: np.ndarray
    pieces: np.ndarray  # tract ∩ city polygons; requests are drawn inside these
    piece_tract: np.ndarray
    piece_population: np.ndarray
    piece_district: np.ndarray  # 1..9
    districts: np.ndarray  # MultiPolygons, index 0 is district 1
    zip_codes: np.ndarray
    zip_geoms: np.ndarray
    neighborhood_names: list[str]
    neighborhood_geoms: np.ndarray


def km_to_lonlat(geoms: Geometries) -> Geometries:
    def convert(coords: np.ndarray) -> np.ndarray:
        return np.column_stack((LON0 + coords[:, 0] / KM_PER_DEG_LON, LAT0 + coords[:, 1] / KM_PER_DEG_LAT))

    return shapely.transform(geoms, convert)


def lonlat_to_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.column_stack(((lon - LON0) * KM_PER_DEG_LON, (lat - LAT0) * KM_PER_DEG_LAT))


def snap(geoms: Geometries) -> Geometries:
    """Snap to a 1e-6 degree grid so neighbouring polygons share vertices exactly once written."""
    return shapely.set_precision(geoms, GRID_DEG)


def county_polygon_km(rng: np.random.Generator) -> shapely.Polygon:
    half_w, half_h, cx, cy = 23.0, 19.0, -3.0, 2.0
    frame = np.array(
        [(-1, -1), (0, -1.08), (1, -1), (1.06, 0), (1, 1), (0, 1.05), (-1, 1), (-1.07, 0)], dtype=float
    )
    corners = frame * (half_w, half_h) + (cx, cy) + rng.uniform(-2.0, 2.0, frame.shape)
    # Convex on purpose: convex Voronoi cells clipped to a convex county stay single polygons.
    return shapely.convex_hull(shapely.multipoints(corners))


def irregular_polygon_km(
    rng: np.random.Generator,
    center: tuple[float, float],
    radius: float,
    vertices: int,
    harmonics: Sequence[float],
    roughness: float,
) -> shapely.Polygon:
    """A star-shaped (hence always simple) blob: a circle bent by a few random harmonics."""
    theta = np.linspace(0.0, 2 * np.pi, vertices, endpoint=False)
    bend = sum(
        amplitude * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
        for k, amplitude in enumerate(harmonics, start=2)
    )
    r = radius * (1 + bend) * (1 + roughness * rng.standard_normal(vertices))
    return shapely.Polygon(np.column_stack((center[0] + r * np.cos(theta), center[1] + r * np.sin(theta))))


def jittered_grid(rng: np.random.Generator, bounds: Sequence[float], spacing: float) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    gx, gy = np.meshgrid(
        np.arange(minx + spacing / 2, maxx, spacing), np.arange(miny + spacing / 2, maxy, spacing)
    )
    points = np.column_stack((gx.ravel(), gy.ravel()))
    return points + rng.uniform(-0.35, 0.35, points.shape) * spacing


def tract_seeds_km(
    rng: np.random.Generator, county: shapely.Polygon, city: shapely.Polygon
) -> tuple[np.ndarray, np.ndarray]:
    """Dense seeds in the city, sparse ones in the countryside; returns (seeds, is_urban)."""
    urban = jittered_grid(rng, city.bounds, spacing=2.0)
    urban = urban[shapely.contains_xy(city.buffer(0.3), urban[:, 0], urban[:, 1])]
    rural = jittered_grid(rng, county.bounds, spacing=6.5)
    keep = shapely.contains_xy(county, rural[:, 0], rural[:, 1]) & ~shapely.contains_xy(
        city.buffer(1.5), rural[:, 0], rural[:, 1]
    )
    rural = rural[keep]
    return np.vstack((urban, rural)), np.r_[np.ones(len(urban), bool), np.zeros(len(rural), bool)]


def voronoi_cells(seeds: np.ndarray, clip: shapely.Polygon) -> np.ndarray:
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=clip, ordered=True)
    return shapely.intersection(shapely.get_parts(cells), clip)


def tract_codes(rng: np.random.Generator, seeds: np.ndarray, is_urban: np.ndarray) -> np.ndarray:
    """Census-like codes: 00NN00 in the core (numbered outwards), 01SSxx sectors in the countryside."""
    codes = np.empty(len(seeds), dtype=object)
    distance = np.hypot(seeds[:, 0], seeds[:, 1])
    urban = np.flatnonzero(is_urban)[np.argsort(distance[is_urban], kind="stable")]
    stems = 2 + np.cumsum(rng.choice([1, 2], size=len(urban), p=[0.7, 0.3]))
    codes[urban] = [f"{stem:04d}00" for stem in stems]
    rural = np.flatnonzero(~is_urban)
    sectors = 12
    angle = np.arctan2(seeds[rural, 1], seeds[rural, 0])
    sector = np.floor((angle + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    for s in range(sectors):
        members = rural[sector == s]
        suffixes = ["00"] if len(members) == 1 else [f"{k:02d}" for k in range(1, len(members) + 1)]
        for member, suffix in zip(members, suffixes, strict=True):
            codes[member] = f"{101 + s:04d}{suffix}"
    return codes


def deprivation_scores(rng: np.random.Generator, seeds: np.ndarray) -> np.ndarray:
    """A smooth poverty field: a poor inner east side, a poorer pocket north-west, richer suburbs."""
    x, y = seeds[:, 0], seeds[:, 1]
    raw = (
        1.6 * np.exp(-((x - 2.5) ** 2 + (y + 1.0) ** 2) / (2 * 2.8**2))
        + 0.9 * np.exp(-((x + 3.0) ** 2 + (y - 3.5) ** 2) / (2 * 1.8**2))
        - 0.05 * np.hypot(x, y)
        + rng.normal(0, 0.45, len(seeds))
    )
    return (raw - raw.mean()) / raw.std()


def build_tracts_2010(
    rng: np.random.Generator, county_km: shapely.Polygon, city_km: shapely.Polygon
) -> Tracts:
    seeds, is_urban = tract_seeds_km(rng, county_km, city_km)
    geoms = snap(km_to_lonlat(voronoi_cells(seeds, county_km)))
    codes = tract_codes(rng, seeds, is_urban)
    population = np.round(
        np.where(
            is_urban,
            rng.lognormal(np.log(4200), 0.35, len(seeds)),
            rng.lognormal(np.log(5000), 0.4, len(seeds)),
        )
    ).astype(np.int64)
    # Two special land-use tracts (a river park in the city, a lake outside it) have nobody living in them.
    urban_edge = np.flatnonzero(is_urban)[np.argmax(np.hypot(*seeds[is_urban].T))]
    lake = rng.choice(np.flatnonzero(~is_urban))
    codes[urban_edge], codes[lake] = "980100", "980200"
    population[[urban_edge, lake]] = 0
    return Tracts(codes, geoms, population, deprivation_scores(rng, seeds))


def split_in_two(polygon: shapely.Polygon) -> list[shapely.Polygon]:
    """Cut a (growing) tract along the diagonal that best halves it. A diagonal adds no vertex, so
    the halves tile their parent exactly, with no rounding sliver once written."""
    ring = np.asarray(polygon.exterior.coords)[:-1]
    n = len(ring)
    best: tuple[float, list[shapely.Polygon]] | None = None
    for i in range(n):
        for j in range(i + 2, n if i else n - 1):
            halves = [shapely.Polygon(ring[i : j + 1]), shapely.Polygon(np.vstack((ring[j:], ring[: i + 1])))]
            imbalance = abs(halves[0].area - halves[1].area)
            if all(h.is_valid for h in halves) and (best is None or imbalance < best[0]):
                best = (imbalance, halves)
    return best[1]


def build_tracts_2020(tracts: Tracts, splits: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Most 2010 tracts carry over unchanged; the most populous few are each split in two."""
    grown = np.argsort(-tracts.population, kind="stable")[:splits]
    last_suffix: dict[str, int] = {}
    for code in tracts.codes:
        last_suffix[code[:4]] = max(last_suffix.get(code[:4], 0), int(code[4:]))
    codes, geoms = [], []
    for i, (code, geom) in enumerate(zip(tracts.codes, tracts.geoms, strict=True)):
        if i not in grown:
            codes.append(code)
            geoms.append(geom)
            continue
        # Children take the next unused suffixes of the parent's stem (010307 -> 010308, 010309).
        for part in split_in_two(geom):
            last_suffix[code[:4]] += 1
            codes.append(f"{code[:4]}{last_suffix[code[:4]]:02d}")
            geoms.append(part)
    order = np.argsort(codes, kind="stable")
    return np.array(codes, dtype=object)[order], np.array(geoms, dtype=object)[order]


def assign_districts(xy_km: np.ndarray, weights: np.ndarray, count: int = 9) -> np.ndarray:
    """Weighted k-means of tract pieces into compact council districts; a per-district penalty that
    grows with overload evens out the population, as redistricting must."""
    ring = np.linspace(0, 2 * np.pi, count - 1, endpoint=False)
    centers = np.vstack(([0.0, 0.0], 4.5 * np.column_stack((np.cos(ring), np.sin(ring)))))
    penalty, target = np.zeros(count), weights.sum() / count
    for _ in range(80):
        labels = (((xy_km[:, None, :] - centers[None]) ** 2).sum(-1) + penalty).argmin(1)
        penalty += 1.5 * (np.bincount(labels, weights, count) / target - 1)
        for j in range(count):
            members = labels == j
            if members.any():
                centers[j] = np.average(xy_km[members], axis=0, weights=weights[members])
    # Number districts clockwise from north, like a reader scanning the map.
    bearing = np.mod(np.pi / 2 - np.arctan2(centers[:, 1], centers[:, 0]), 2 * np.pi)
    number = np.empty(count, dtype=np.int64)
    number[np.argsort(bearing, kind="stable")] = np.arange(1, count + 1)
    return number[labels]


def as_multipolygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    return shapely.multipolygons(shapely.get_parts(geom))


def city_pieces(tracts: Tracts, city: shapely.Polygon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pieces = snap(shapely.intersection(tracts.geoms, city))
    share = shapely.area(pieces) / shapely.area(tracts.geoms)
    keep = np.flatnonzero(share > 1e-6)
    return pieces[keep], keep, tracts.population[keep] * share[keep]


def build_neighborhoods(
    rng: np.random.Generator, city: shapely.Polygon, pieces: np.ndarray, weights: np.ndarray
) -> tuple[list[str], np.ndarray]:
    names = [f"{place} {rng.choice(NEIGHBORHOOD_KINDS)}" for place in rng.permutation(NEIGHBORHOOD_PLACES)]
    hosts = rng.choice(len(pieces), size=len(names), p=weights / weights.sum())
    geoms = []
    for host in hosts:
        lon, lat = random_points_in(rng, pieces[host], city, 1)
        center = lonlat_to_km(lon, lat)[0]
        blob = irregular_polygon_km(rng, tuple(center), rng.uniform(0.35, 0.9), 18, (0.12, 0.08), 0.05)
        geoms.append(as_multipolygon(snap(shapely.intersection(km_to_lonlat(blob), city))))
    return names, np.array(geoms, dtype=object)


def build_zip_codes(
    rng: np.random.Generator, county_km: shapely.Polygon, city_km: shapely.Polygon
) -> tuple[np.ndarray, np.ndarray]:
    ring = np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, 1)
    urban = np.vstack(([0.0, 0.0], 4.0 * np.column_stack((np.cos(ring), np.sin(ring)))))
    rural = jittered_grid(rng, county_km.bounds, spacing=14.0)
    rural = rural[
        shapely.contains_xy(county_km, rural[:, 0], rural[:, 1])
        & ~shapely.contains_xy(city_km, rural[:, 0], rural[:, 1])
    ]
    seeds = np.vstack((urban, rural))
    geoms = snap(km_to_lonlat(voronoi_cells(seeds, county_km)))
    codes = np.sort(rng.choice(np.arange(37601, 37700), size=len(seeds), replace=False)).astype(str)
    return codes, np.array([as_multipolygon(g) for g in geoms], dtype=object)


def build_geography(rng: np.random.Generator) -> Geography:
    county_km = county_polygon_km(rng)
    city_km = irregular_polygon_km(rng, (0.0, 0.0), 7.2, 120, (0.16, 0.10, 0.0, 0.05), 0.012)
    city = snap(km_to_lonlat(city_km))
    tracts = build_tracts_2010(rng, county_km, city_km)
    codes_2020, geoms_2020 = build_tracts_2020(tracts)
    pieces, piece_tract, piece_population = city_pieces(tracts, city)
    centroids = shapely.get_coordinates(shapely.centroid(pieces))
    piece_district = assign_districts(lonlat_to_km(centroids[:, 0], centroids[:, 1]), piece_population + 1.0)
    districts = np.array(
        [as_multipolygon(snap(shapely.union_all(pieces[piece_district == d]))) for d in range(1, 10)],
        dtype=object,
    )
    zip_codes, zip_geoms = build_zip_codes(rng, county_km, city_km)
    names, neighborhoods = build_neighborhoods(rng, city, pieces, piece_population + 1)
    return Geography(
        city=city,
        tracts_2010=tracts,
        tracts_2020_codes=codes_2020,
        tracts_2020_geoms=geoms_2020,
        pieces=pieces,
        piece_tract=piece_tract,
        piece_population=piece_population,
        piece_district=piece_district,
        districts=districts,
        zip_codes=zip_codes,
        zip_geoms=zip_geoms,
        neighborhood_names=names,
        neighborhood_geoms=neighborhoods,
    )


def random_points_in(
    rng: np.random.Generator, area: shapely.Geometry, city: shapely.Geometry, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points by rejection; also tested against the city so rounding slivers stay inside it."""
    shapely.prepare(area)
    shapely.prepare(city)
    minx, miny, maxx, maxy = area.bounds
    fill = max(area.area / ((maxx - minx) * (maxy - miny)), 0.05)
    xs, ys, found = [], [], 0
    while found < n:
        draws = int((n - found) / fill * 1.2) + 16
        x, y = rng.uniform(minx, maxx, draws), rng.uniform(miny, maxy, draws)
        inside = shapely.contains_xy(area, x, y) & shapely.contains_xy(city, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        found += int(inside.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], newline: str = "\n"
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def wkt(geom: shapely.Geometry, precision: int = 6) -> str:
    return shapely.to_wkt(geom, rounding_precision=precision, trim=True)


def point_wkt(lon: float, lat: float, decimals: int) -> str:
    return f"POINT ({round(float(lon), decimals)!r} {round(float(lat), decimals)!r})"


def plain_number(value: float, decimals: int = 2) -> str:
    """Numbers as the exports print them: no trailing zeros ("284597.9", "60000", "31")."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@cache
def clock_texts() -> np.ndarray:
    seconds = np.arange(SECONDS_PER_DAY)
    hour, minute, second = seconds // 3600, seconds // 60 % 60, seconds % 60
    hour12 = np.where(hour % 12 == 0, 12, hour % 12)
    return np.array(
        [
            f"{h:02d}:{m:02d}:{s:02d} {'AM' if h24 < 12 else 'PM'}"
            for h, m, s, h24 in zip(hour12, minute, second, hour, strict=True)
        ],
        dtype=TEXT,
    )


@cache
def date_texts(first_day: int, last_day: int) -> np.ndarray:
    """``MM/DD/YYYY `` for every epoch day in the range."""
    days = pd.to_datetime(np.arange(first_day, last_day + 1), unit="D")
    return np.array(days.strftime("%m/%d/%Y "), dtype=TEXT)


def format_timestamps(seconds: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """``MM/DD/YYYY hh:mm:ss AM`` for epoch seconds (blank where not ``present``), via lookup tables
    because strftime is slow."""
    if present is not None:
        text = np.full(len(seconds), "", dtype=TEXT)
        text[present] = format_timestamps(seconds[present])
        return text
    days, second_of_day = np.divmod(seconds, SECONDS_PER_DAY)
    if not len(days):
        return np.array([], dtype=TEXT)
    # One date table spanning every request's lifetime serves every chunk, so it is built once.
    first_day = min(int(days.min()), LEGACY_FIRST_DAY)
    last_day = max(int(days.max()), EXTRACTED_AT // SECONDS_PER_DAY + 400)
    return np.strings.add(date_texts(first_day, last_day)[days - first_day], clock_texts()[second_of_day])


def midnight_text(day: np.datetime64) -> str:
    return pd.Timestamp(day).strftime("%m/%d/%Y 12:00:00 AM")


def format_points(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_text = np.round(lon, 9).astype(TEXT)
    lat_text = np.round(lat, 9).astype(TEXT)
    return np.strings.add(
        np.strings.add(np.strings.add("POINT (", lon_text), np.strings.add(" ", lat_text)), ")"
    )


# --------------------------------------------------------------------------------------------
# 311 request types
# --------------------------------------------------------------------------------------------

FLAT = (1.0,) * 12
# Monthly shape of the real pothole file: freeze-thaw peak in February-April.
POTHOLE_SEASON = (1.06, 1.32, 1.47, 1.22, 1.09, 1.07, 0.96, 0.95, 0.80, 0.72, 0.60, 0.74)
SUMMER = (0.7, 0.7, 0.85, 1.0, 1.15, 1.3, 1.35, 1.3, 1.15, 0.95, 0.8, 0.7)
GROWING_SEASON = (0.3, 0.3, 0.6, 1.0, 1.6, 1.9, 2.0, 1.8, 1.4, 0.8, 0.4, 0.3)
LONG_NIGHTS = (1.3, 1.2, 1.0, 0.85, 0.75, 0.7, 0.7, 0.75, 0.9, 1.1, 1.3, 1.4)

# Requests per year in the real pothole export, used as relative daily rates per era.
LEGACY_YEAR_RATE = {
    2003: 518, 2004: 746, 2005: 861, 2006: 602, 2007: 435, 2008: 537, 2009: 898,
    2010: 1316, 2011: 1337, 2012: 1592, 2013: 1780, 2014: 1070, 2015: 1553, 2016: 1432,
}  # fmt: skip
MODERN_YEAR_RATE = {
    2016: 2500, 2017: 2496, 2018: 3077, 2019: 3252, 2020: 2582, 2021: 2179, 2022: 2014, 2023: 2086,
    2024: 2600,
}  # fmt: skip
LEGACY_WEEKDAY_RATE = (1.0, 1.0, 1.0, 1.0, 0.85, 0.003, 0.003)
MODERN_WEEKDAY_RATE = (1.0, 0.96, 0.96, 0.95, 0.85, 0.22, 0.23)
# Hour-of-day of creation in the current system (real counts).
HOUR_RATE = (
    78, 35, 19, 15, 32, 37, 132, 388, 1418, 1888, 2052, 2026, 1675, 1947, 2094, 1934, 1382, 743, 484, 386,
    342, 263, 226, 160,
)  # fmt: skip

INTAKE_FORMS = {
    "gov.publicstuff.com": 0.55, "Iframe": 0.20, "iOS": 0.17, "Android": 0.068,
    "iOS (Staff)": 0.008, "Android (Staff)": 0.003, "Iframe (Staff)": 0.001,
}  # fmt: skip

TRANSPORTATION_DEPARTMENT = f"CDOT - {CITY_NAME} Department of Transportation"
POLICE_DEPARTMENT = f"CPD - {CITY_NAME} Police Department"
FIRE_DEPARTMENT = f"CFD - {CITY_NAME} Fire Department"
CODES_DEPARTMENT = "ECD - Economic Community Development"


@dataclass(frozen=True)
class RequestType:
    name: str
    file: str
    share: float  # of the file's rows
    legacy: bool  # the 2003-2016 system: midnight timestamps, "CLOSED", no intake form or district
    sla_days: int  # working days (calendar days in the legacy system)
    sla_label: str  # what the export prints in its SLA column
    close_median_days: float
    close_sigma: float
    codes: Mapping[str, float]
    departments: Mapping[str, float]
    season: tuple[float, ...]
    templates: tuple[str, ...]
    blank_description: float
    deprivation_affinity: float  # how strongly requests concentrate in poorer tracts
    private: bool = False  # person-related: mostly not public


REQUEST_TYPES: tuple[RequestType, ...] = (
    RequestType(
        name="Pothole", file=POTHOLES_FILE, share=0.40, legacy=True, sla_days=6, sla_label="",
        close_median_days=1.2, close_sigma=1.0, codes={}, departments={}, season=POTHOLE_SEASON,
        templates=(*["CWS - Pothole"] * 5, "Pothole"), blank_description=0.0, deprivation_affinity=0.0,
    ),
    RequestType(
        name="Potholes", file=POTHOLES_FILE, share=0.535, legacy=False, sla_days=5, sla_label="5",
        close_median_days=3.0, close_sigma=1.1,
        codes={"EMERGENCY": 0.75, "URGENT": 0.245, "NONE": 0.003, "STANDARD": 0.002},
        departments={}, season=POTHOLE_SEASON,
        templates=(
            "Pothole in front of {addr}.", "Large pothole on {street}", "multiple potholes", "Fill potholes",
            "Pothole on street in front of this address.", "2 potholes", "Pot hole", "Sinkhole", "undefined",
            "Several potholes near {street} and {cross}, one is very deep",
            "Pothole at the intersection of {street} and {cross}, more on the {street} side.",
            "Pothole in the right lane of {street}, it damaged my tire",
            "Large pothole next to the storm drain in front of {addr}", "The whole road needs to be paved",
            "Potholes up and down {street} from {cross} to the end of the road",
            "Pothole is in front of {num}", "Potholes   {num} - {num2} {street}", ".",
        ),
        blank_description=0.15, deprivation_affinity=0.0,
    ),
    RequestType(
        name="Distressed Pavement", file=POTHOLES_FILE, share=0.065, legacy=False, sla_days=20,
        sla_label="20", close_median_days=4.0, close_sigma=1.4,
        codes={"EMERGENCY": 0.95, "URGENT": 0.04, "NONE": 0.005, "STANDARD": 0.005},
        departments={}, season=POTHOLE_SEASON,
        templates=(
            "Road is crumbling along the edge of {street}", "Cracked and buckled pavement in front of {addr}",
            "Extremely rough pavement with multiple patches and bumps", "road needs repaving",
            "Asphalt breaking up near {street} and {cross}", "Utility cut not patched properly at {addr}",
            "Street is sinking around the manhole cover on {street}",
            "The entire street should be repaved, the shoulders have eroded and it is dangerous",
        ),
        blank_description=0.10, deprivation_affinity=0.1,
    ),
    RequestType(
        name="Sidewalks", file=DEPARTMENT_FILE, share=0.18, legacy=True, sla_days=365, sla_label="",
        close_median_days=21.0, close_sigma=1.5, codes={}, departments={"ENGRG": 1.0}, season=FLAT,
        templates=("ENG - Sidewalks",), blank_description=0.0, deprivation_affinity=0.2,
    ),
    RequestType(
        name="Sidewalks", file=DEPARTMENT_FILE, share=0.22, legacy=False, sla_days=28, sla_label="",
        close_median_days=13.0, close_sigma=1.3,
        codes={"NONE": 0.75, "URGENT": 0.2, "EMERGENCY": 0.045, "STANDARD": 0.005},
        departments={
            "DE - Design Engineering": 0.92, TRANSPORTATION_DEPARTMENT: 0.03, "PW - Stormwater": 0.02,
            "TE - Traffic Engineering": 0.015, "PW - Streets": 0.015,
        },
        season=FLAT,
        templates=(
            "Sidewalk cracked / damaged. Please repair or replace.", "Trip hazard in front of {addr}",
            "Tree roots lifting the sidewalk on {street}", "Missing ADA ramp at {street} and {cross}",
            "Hole in sidewalk", "Tripping hazard",
            "Requesting a sidewalk along {street}, kids walk in the road to school",
            "Sidewalk blocked by overgrown shrubs at {addr}",
        ),
        blank_description=0.10, deprivation_affinity=0.2,
    ),
    RequestType(
        name="Missed Garbage Pickup", file=DEPARTMENT_FILE, share=0.20, legacy=False, sla_days=2,
        sla_label="", close_median_days=1.0, close_sigma=0.7, codes={"STANDARD": 0.8, "URGENT": 0.2},
        departments={"PW - Solid Waste": 1.0}, season=FLAT,
        templates=(
            "Garbage not picked up on {street} this week", "Cart at {addr} was missed, it was out by 7am",
            "Whole street missed on {street}", "Recycling missed at {addr}",
            "Missed pickup again, third time this month",
        ),
        blank_description=0.05, deprivation_affinity=0.2,
    ),
    RequestType(
        name="Streetlight Out", file=DEPARTMENT_FILE, share=0.11, legacy=False, sla_days=10, sla_label="",
        close_median_days=6.0, close_sigma=0.9, codes={"STANDARD": 0.7, "NONE": 0.3},
        departments={TRANSPORTATION_DEPARTMENT: 0.85, "TO - Traffic Operations": 0.15}, season=LONG_NIGHTS,
        templates=(
            "Streetlight out in front of {addr}", "Light pole flickering at {street} and {cross}",
            "Several streetlights out along {street}", "Streetlight stays on all day at {addr}",
        ),
        blank_description=0.05, deprivation_affinity=0.2,
    ),
    RequestType(
        name="Illegal Dumping", file=DEPARTMENT_FILE, share=0.09, legacy=False, sla_days=10, sla_label="",
        close_median_days=5.0, close_sigma=1.0, codes={"STANDARD": 0.6, "URGENT": 0.4},
        departments={"PW - Solid Waste": 0.7, CODES_DEPARTMENT: 0.3}, season=SUMMER,
        templates=(
            "Mattresses and tires dumped behind {addr}",
            "Construction debris dumped on {street} near {cross}",
            "Trash bags dumped in the creek off {street}",
            "Couch, appliances and bags of trash left at the vacant lot on {street}",
        ),
        blank_description=0.05, deprivation_affinity=0.9,
    ),
    RequestType(
        name="Overgrown Lot", file=DEPARTMENT_FILE, share=0.08, legacy=False, sla_days=30, sla_label="",
        close_median_days=21.0, close_sigma=0.8, codes={"NONE": 0.7, "STANDARD": 0.3},
        departments={CODES_DEPARTMENT: 1.0}, season=GROWING_SEASON,
        templates=(
            "Vacant lot at {addr} overgrown, grass over 2 feet",
            "Overgrown weeds and brush next to {addr}, snakes seen",
            "Abandoned house with an overgrown yard on {street}",
        ),
        blank_description=0.05, deprivation_affinity=1.0,
    ),
    RequestType(
        name="Abandoned Vehicle", file=DEPARTMENT_FILE, share=0.05, legacy=False, sla_days=15, sla_label="",
        close_median_days=9.0, close_sigma=0.9, codes={"STANDARD": 0.9, "NONE": 0.1},
        departments={POLICE_DEPARTMENT: 0.8, CODES_DEPARTMENT: 0.2}, season=FLAT,
        templates=(
            "White sedan with flat tires parked on {street} for 3 weeks",
            "Vehicle with no tag abandoned in front of {addr}", "Junk car on blocks in the yard at {addr}",
        ),
        blank_description=0.05, deprivation_affinity=0.7,
    ),
    RequestType(
        name="Code Complaint - Occupied Residence", file=DEPARTMENT_FILE, share=0.03, legacy=False,
        sla_days=20, sla_label="", close_median_days=12.0, close_sigma=0.9,
        codes={"URGENT": 0.6, "STANDARD": 0.4}, departments={CODES_DEPARTMENT: 1.0}, season=FLAT,
        templates=(
            "Tenant at {addr} reports no heat and mold in the bedrooms, landlord not responding",
            "Occupied house at {addr} with the roof caving in, family with small children living there",
            "Caller {person} ({phone}) reports raw sewage in the crawlspace of the rental at {addr}",
            "Landlord refuses to fix broken windows at {addr}, tenant is disabled",
        ),
        blank_description=0.02, deprivation_affinity=1.1, private=True,
    ),
    RequestType(
        name="Welfare Check", file=DEPARTMENT_FILE, share=0.015, legacy=False, sla_days=1, sla_label="",
        close_median_days=0.1, close_sigma=1.0, codes={"EMERGENCY": 0.7, "URGENT": 0.3},
        departments={POLICE_DEPARTMENT: 1.0}, season=FLAT,
        templates=(
            "Elderly neighbor at {addr} has not been seen for several days, mail piling up",
            "Caller {person} ({phone}) asks for a welfare check on her father at {addr}",
            "Man sleeping in a car near {street} and {cross} for two days, appears unwell",
            "Neighbor says children are left alone at {addr} overnight",
        ),
        blank_description=0.02, deprivation_affinity=0.6, private=True,
    ),
    RequestType(
        name="Smoke Alarm Request", file=DEPARTMENT_FILE, share=0.01, legacy=False, sla_days=10, sla_label="",
        close_median_days=7.0, close_sigma=0.6, codes={"STANDARD": 1.0}, departments={FIRE_DEPARTMENT: 1.0},
        season=LONG_NIGHTS,
        templates=(
            "Requesting free smoke alarm installation at {addr}",
            "Senior resident at {addr} needs smoke detectors replaced, lives alone",
        ),
        blank_description=0.05, deprivation_affinity=0.5,
    ),
    RequestType(
        name="Recreation Center Maintenance", file=DEPARTMENT_FILE, share=0.015, legacy=False, sla_days=10,
        sla_label="", close_median_days=5.0, close_sigma=1.0, codes={"NONE": 0.6, "STANDARD": 0.4},
        departments={"YFD - Youth & Family Development": 0.85, "PW - Facilities Management": 0.15},
        season=SUMMER,
        templates=(
            "Broken water fountain in the rec center gym",
            "Lights out on the basketball court at the park on {street}",
            "Playground equipment damaged behind the community center on {street}",
        ),
        blank_description=0.05, deprivation_affinity=0.6,
    ),
    RequestType(
        name="Bad Odor Complaint", file=ODOR_FILE, share=0.75, legacy=True, sla_days=4, sla_label="",
        close_median_days=1.2, close_sigma=0.8, codes={}, departments={"SEWER": 1.0}, season=SUMMER,
        templates=("SEW - Bad Odor Complaint",), blank_description=0.0, deprivation_affinity=0.3,
    ),
    RequestType(
        name="Bad Odor Complaint (Sewer Only)", file=ODOR_FILE, share=0.14, legacy=False, sla_days=4,
        sla_label="", close_median_days=0.3, close_sigma=1.3,
        codes={"URGENT": 0.5, "EMERGENCY": 0.4, "NONE": 0.1},
        departments={"PW - Wastewater": 0.9, "PW - Stormwater": 0.05, "PW - Streets": 0.05}, season=SUMMER,
        templates=(
            "Smells like raw sewage coming from the manhole in front of {addr}",
            "Strong sewer odor near {street} and {cross}", "Sewer smell coming up through the storm drain",
            "Suite 100  Smells like raw sewage. Must be sanitized.",
        ),
        blank_description=0.03, deprivation_affinity=0.3,
    ),
    RequestType(
        name="Odor Complaint - Biosolids", file=ODOR_FILE, share=0.11, legacy=False, sla_days=4, sla_label="",
        close_median_days=0.3, close_sigma=1.3, codes={"URGENT": 0.5, "EMERGENCY": 0.4, "NONE": 0.1},
        departments={"PW - Wastewater": 0.9, "PW - Streets": 0.1}, season=SUMMER,
        templates=(
            "Odor from the biosolids trucks on {street}",
            "Chemical smell along {street}, worse in the evenings",
            "Bad odor from the pump station on {street}",
        ),
        blank_description=0.03, deprivation_affinity=0.3,
    ),
)  # fmt: skip

STREETS = (
    "Main St", "Oak St", "Maple Ave", "Cedar Ln", "Pine St", "Elm St", "Walnut St", "Chestnut St", "Ridge Rd",
    "Valley View Dr", "Lakeshore Dr", "Mill Creek Rd", "Church St", "Market St", "Broad St", "Jefferson Ave",
    "Madison St", "Lincoln Ave", "Franklin St", "Washington Ave", "River Rd", "Hillcrest Dr", "Sunset Blvd",
    "Park Ave", "Spring St", "Dogwood Ln", "Magnolia Ave", "Poplar St", "Willow Way", "Birch St", "Laurel Dr",
    "Old Mill Rd", "Depot St", "Railroad Ave", "Academy St", "College St", "Highland Ave", "Orchard Dr",
    "Meadow Ln", "E 3rd St", "W 12th St", "4th Ave", "N Center St", "S Ridgeway Ave", "Quarry Rd",
    "Ferry Landing Rd", "Civic Pkwy", "Tanner Ridge Rd",
)  # fmt: skip
FIRST_NAMES = (
    "Avery", "Jordan", "Morgan", "Casey", "Riley", "Taylor", "Jamie", "Quinn", "Reese", "Dakota", "Linda",
    "Marcus", "Denise", "Harold", "Rosa", "Tyrone", "Beth", "Carlos", "Nadia", "Wendell",
)  # fmt: skip
LAST_NAMES = (
    "Ortiz", "Whitfield", "Nakamura", "Pruitt", "Delgado", "Haskins", "Abernathy", "Castellano", "Lindqvist",
    "McBride", "Okafor", "Prewitt", "Rutledge", "Sandoval", "Tillman", "Vance",
)  # fmt: skip
NEIGHBORHOOD_PLACES = (
    "Maple Heights", "Cedar Hill", "Riverbend", "Oak Grove", "Willow Creek", "Foxrun", "Pine Ridge",
    "Meadowbrook", "Brookside", "Stonegate", "Hollow Springs", "Laurel Park", "Mill Village",
    "Depot District", "Orchard Knoll", "Sycamore Flats", "Bluff View", "Hawthorne", "Briarwood",
    "Kingsbury", "Eastgate",
    "Westview", "Northshore", "Southside", "Fairhaven", "Ivy Terrace", "Lakeside", "Copper Ridge",
    "Highland Terrace", "Dogwood Trace", "Magnolia Park", "Chestnut Hill", "Bellmont", "Rosewood",
    "Silver Lake", "Timberline", "Quarry Hill", "Windsor Place", "Ashford", "Tanner Ridge",
)  # fmt: skip
NEIGHBORHOOD_KINDS = (
    "Neighborhood Association", "Community Association", "HOA", "Homeowners Association", "Community Club",
)  # fmt: skip

CODE_LABELS = ("", "EMERGENCY", "URGENT", "NONE", "STANDARD")
STATUS_LABELS = ("CLOSED", "O-CLOSED", "O-NEW", "O-OPEN", "")
CLOSED, O_CLOSED, O_NEW, O_OPEN, NO_STATUS = range(5)
ON_TIME_LABELS = ("", "Yes", "No", "N/A")
INTAKE_LABELS = ("", *INTAKE_FORMS)
DEPARTMENT_LABELS = ("", *sorted({d for t in REQUEST_TYPES for d in t.departments}))
TEMPLATES = tuple(template for t in REQUEST_TYPES for template in t.templates)
TEMPLATE_OFFSETS = np.cumsum([0] + [len(t.templates) for t in REQUEST_TYPES])

POTHOLE_COLUMNS = (
    ("service_request_key", "key"), ("created_date", "created"), ("request_type", "type"),
    ("description", "description"), ("request_type_code", "code"), ("status_code", "status"),
    ("intake_form", "intake"), ("days_to_complete", "days"), ("sla_fy_2019", "sla"),
    ("on_time_indicator", "on_time"), ("completed_at", "completed"), ("due_at", "due"),
    ("ispublic", "public"), ("council_district", "district"), ("loc", "location"),
)  # fmt: skip
DEPARTMENT_COLUMNS = (
    ("Service Request Key", "key"), ("Created Date", "created"), ("Due At", "due"),
    ("Completed At", "completed"), ("On Time Indicator", "on_time"), ("Department", "department"),
    ("Request Type", "type"), ("Description", "description"), ("Request Type Code", "code"),
    ("Status Code", "status"),
    ("Intake Form", "intake"), ("Actual Days to Complete - Working", "days"), ("SLA FY 2019", "sla"),
    ("isPublic", "public"), ("Council District", "district"), ("PublicLocation", "location"),
)  # fmt: skip
FILE_COLUMNS = {
    POTHOLES_FILE: POTHOLE_COLUMNS,
    DEPARTMENT_FILE: DEPARTMENT_COLUMNS,
    ODOR_FILE: DEPARTMENT_COLUMNS,
}
FILES = tuple(REQUEST_FILE_SHARES)


# --------------------------------------------------------------------------------------------
# 311 request generation (vectorised per request type)
# --------------------------------------------------------------------------------------------


def allocate(total: int, shares: Sequence[float]) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``shares`` (largest remainder)."""
    exact = np.asarray(shares, dtype=float) / sum(shares) * total
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def choose(
    rng: np.random.Generator, weights: Mapping[str, float], labels: Sequence[str], n: int
) -> np.ndarray:
    """Indices into ``labels`` drawn with the given weights."""
    index = np.array([labels.index(name) for name in weights], dtype=np.int16)
    p = np.array(list(weights.values()), dtype=float)
    return index[rng.choice(len(index), size=n, p=p / p.sum())]


def sample_days(rng: np.random.Generator, t: RequestType, n: int) -> np.ndarray:
    first, last = (
        (LEGACY_FIRST_DAY, LEGACY_LAST_DAY)
        if t.legacy
        else (MODERN_FIRST_DAY, EXTRACTED_AT // SECONDS_PER_DAY)
    )
    days = np.arange(first, last + 1)
    dates = days.astype("datetime64[D]")
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    year_rate = LEGACY_YEAR_RATE if t.legacy else MODERN_YEAR_RATE
    weekday_rate = LEGACY_WEEKDAY_RATE if t.legacy else MODERN_WEEKDAY_RATE
    rate_by_year = np.array([year_rate[y] for y in range(year[0], year[-1] + 1)], dtype=float)
    weight = np.asarray(t.season)[month] * np.asarray(weekday_rate)[weekday] * rate_by_year[year - year[0]]
    return rng.choice(days, size=n, p=weight / weight.sum())


def sample_created(rng: np.random.Generator, t: RequestType, n: int) -> np.ndarray:
    days = sample_days(rng, t, n)
    if t.legacy:
        return days * SECONDS_PER_DAY
    hour_p = np.asarray(HOUR_RATE, dtype=float) / sum(HOUR_RATE)
    second_of_day = rng.choice(24, size=n, p=hour_p) * 3600 + rng.integers(0, 3600, n)
    created = days * SECONDS_PER_DAY + second_of_day
    return np.where(created > EXTRACTED_AT, created - SECONDS_PER_DAY, created)


def shift_into_working_hours(
    rng: np.random.Generator, created: np.ndarray, completed: np.ndarray
) -> np.ndarray:
    """Crews close requests on weekdays between 6:30 and 16:30."""
    day, second_of_day = np.divmod(completed, SECONDS_PER_DAY)
    workday = np.busday_offset(day.astype("datetime64[D]"), 0, roll="forward").astype(np.int64)
    outside = (workday != day) | (second_of_day < 6 * 3600) | (second_of_day > 16 * 3600 + 1800)
    moved = workday * SECONDS_PER_DAY + rng.integers(6 * 3600 + 1800, 16 * 3600 + 1800, len(day))
    completed = np.where(outside, moved, completed)
    return np.where(completed <= created, created + rng.integers(300, 7200, len(day)), completed)


def sample_completion(
    rng: np.random.Generator, t: RequestType, created: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Completion times (lognormal time-to-close) and whether the request was closed at extraction."""
    n = len(created)
    duration_days = rng.lognormal(np.log(t.close_median_days), t.close_sigma, n)
    if t.legacy:
        completed = created + np.floor(duration_days).astype(np.int64) * SECONDS_PER_DAY
        batch_closed = (created < BULK_CLOSURE_AT) & (completed < BULK_CLOSURE_AT) & (rng.random(n) < 0.12)
        return np.where(batch_closed, BULK_CLOSURE_AT, completed), np.ones(n, bool)
    completed = shift_into_working_hours(
        rng, created, created + (duration_days * SECONDS_PER_DAY).astype(np.int64)
    )
    closed = (completed <= EXTRACTED_AT) & (rng.random(n) >= 0.002)
    # A few are stamped closed before they were created, as in the real export.
    backdated = closed & (rng.random(n) < 0.0007)
    completed = np.where(backdated, created - rng.integers(1, 36 * 3600, n), completed)
    return completed, closed


def due_times(t: RequestType, created: np.ndarray) -> np.ndarray:
    if t.legacy:
        return created + t.sla_days * SECONDS_PER_DAY
    day, second_of_day = np.divmod(created, SECONDS_PER_DAY)
    due_day = np.busday_offset(day.astype("datetime64[D]"), t.sla_days, roll="forward").astype(np.int64)
    return due_day * SECONDS_PER_DAY + second_of_day


def status_codes(rng: np.random.Generator, t: RequestType, closed: np.ndarray) -> np.ndarray:
    n = len(closed)
    if t.legacy:
        return np.full(n, CLOSED, np.int8)
    status = np.where(closed, O_CLOSED, np.where(rng.random(n) < 0.93, O_NEW, O_OPEN)).astype(np.int8)
    return np.where(rng.random(n) < 0.0002, NO_STATUS, status).astype(np.int8)


def generate_type(rng: np.random.Generator, type_id: int, n: int) -> dict[str, np.ndarray]:
    """All non-spatial fields of ``n`` requests of one type."""
    t = REQUEST_TYPES[type_id]
    created = sample_created(rng, t, n)
    completed, closed = sample_completion(rng, t, created)
    due = due_times(t, created)
    modern_closed = closed & (not t.legacy)
    on_time = np.where(completed <= due, 1, 2)
    on_time = np.where(t.legacy, 0, np.where(modern_closed, on_time, 3)).astype(np.int8)
    days = np.busday_count(
        (created // SECONDS_PER_DAY).astype("datetime64[D]"),
        (completed // SECONDS_PER_DAY).astype("datetime64[D]"),
    )
    blank_department = (rng.random(n) < 0.02) & (not t.legacy)
    department = choose(rng, t.departments, DEPARTMENT_LABELS, n) if t.departments else np.zeros(n, np.int16)
    template = TEMPLATE_OFFSETS[type_id] + rng.integers(0, len(t.templates), n)
    street = rng.integers(0, len(STREETS), n)
    house = rng.integers(100, 9900, n)
    return {
        "type_id": np.full(n, type_id, np.int16),
        "file": np.full(n, FILES.index(t.file), np.int8),
        "legacy": np.full(n, t.legacy),
        "created": created,
        "completed": completed,
        "closed": closed,
        "due": due,
        "status": status_codes(rng, t, closed),
        "on_time": on_time,
        "days": days,
        "has_days": modern_closed,
        "code": np.zeros(n, np.int16) if t.legacy else choose(rng, t.codes, CODE_LABELS, n),
        "intake": np.zeros(n, np.int16) if t.legacy else choose(rng, INTAKE_FORMS, INTAKE_LABELS, n),
        "department": np.where(blank_department, 0, department).astype(np.int16),
        "public": rng.random(n) < (0.1 if t.private else 1.0 if t.legacy else 0.965),
        "keep_district": (rng.random(n) >= 0.005) & (not t.legacy),
        "location_kind": rng.choice(3, size=n, p=[0.96, 0.03, 0.01]).astype(np.int8),  # point, blank, bogus
        "template": np.where(rng.random(n) < t.blank_description, -1, template).astype(np.int32),
        "house": house,
        "house_to": house + 2 * rng.integers(1, 20, n),
        "street": street,
        "cross": (street + rng.integers(1, len(STREETS), n)) % len(STREETS),
        "person": rng.integers(0, len(FIRST_NAMES) * len(LAST_NAMES), n),
        "phone": rng.integers(100, 200, n),
    }


def place_requests(rng: np.random.Generator, geo: Geography, type_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Points inside the city, denser where people live; some types lean to poorer tracts."""
    piece_deprivation = geo.tracts_2010.deprivation[geo.piece_tract]
    piece = np.empty(len(type_ids), np.int64)
    for type_id, t in enumerate(REQUEST_TYPES):
        rows = np.flatnonzero(type_ids == type_id)
        weight = geo.piece_population * np.exp(t.deprivation_affinity * piece_deprivation)
        piece[rows] = rng.choice(len(geo.pieces), size=len(rows), p=weight / weight.sum())
    lon, lat = np.empty(len(piece)), np.empty(len(piece))
    order = np.argsort(piece, kind="stable")
    bounds = np.searchsorted(piece[order], np.arange(len(geo.pieces) + 1))
    for p in range(len(geo.pieces)):
        rows = order[bounds[p] : bounds[p + 1]]
        if len(rows):
            lon[rows], lat[rows] = random_points_in(rng, geo.pieces[p], geo.city, len(rows))
    district = geo.piece_district[piece]
    # Repeat reports: about 8% of requests are filed at a spot someone already reported.
    repeat = rng.random(len(piece)) < 0.08
    source = rng.integers(0, len(piece), len(piece))[repeat]
    lon[repeat], lat[repeat], district[repeat] = lon[source], lat[source], district[source]
    return {"lon": lon, "lat": lat, "district": district}


def strictly_increasing(values: np.ndarray) -> np.ndarray:
    steps = np.arange(len(values))
    return np.maximum.accumulate(values - steps) + steps


def assign_keys(
    created: np.ndarray, legacy: np.ndarray, tiebreak: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keys increase with creation time: one integer sequence for the current system across all
    three files, and "YY-NNNNNNNN" per-year sequences for the legacy system (returned as NNNNNNNN)."""
    order = np.lexsort((tiebreak, created))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    key = np.empty(len(order), np.int64)
    modern = order[~legacy[order]]
    span = EXTRACTED_AT - MODERN_FIRST_DAY * SECONDS_PER_DAY
    elapsed = created[modern] - MODERN_FIRST_DAY * SECONDS_PER_DAY
    key[modern] = strictly_increasing(
        MODERN_FIRST_KEY + elapsed * (MODERN_LAST_KEY - MODERN_FIRST_KEY) // span
    )
    old = order[legacy[order]]
    year = created[old].astype("datetime64[s]").astype("datetime64[Y]")
    year_start = year.astype("datetime64[s]").astype(np.int64)
    position = (created[old] - year_start) * LEGACY_KEYS_PER_YEAR // (365 * SECONDS_PER_DAY) + 1
    for y in np.unique(year):
        in_year = year == y
        key[old[in_year]] = strictly_increasing(position[in_year])
    return key, rank


def generate_requests(rng: np.random.Generator, geo: Geography, total: int) -> dict[str, np.ndarray]:
    shares = [REQUEST_FILE_SHARES[t.file] * t.share for t in REQUEST_TYPES]
    parts = [generate_type(rng, type_id, n) for type_id, n in enumerate(allocate(total, shares))]
    batch = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    batch |= place_requests(rng, geo, batch["type_id"])
    batch["key"], batch["rank"] = assign_keys(batch["created"], batch["legacy"], rng.random(total))
    return batch


# --------------------------------------------------------------------------------------------
# 311 rendering
# --------------------------------------------------------------------------------------------

CSV_SPECIAL = (",", '"', "\n", "\r")


def csv_field(text: str) -> str:
    """One field as csv.writer's minimal quoting writes it."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in CSV_SPECIAL) else text


def label_table(labels: Iterable[str]) -> np.ndarray:
    """Categorical values as ready-to-write CSV fields; indexing an object array copies no text."""
    return np.array([csv_field(label) for label in labels], dtype=object)


TYPE_FIELDS = label_table(t.name for t in REQUEST_TYPES)
SLA_FIELDS = label_table(t.sla_label for t in REQUEST_TYPES)
CODE_FIELDS = label_table(CODE_LABELS)
STATUS_FIELDS = label_table(STATUS_LABELS)
ON_TIME_FIELDS = label_table(ON_TIME_LABELS)
INTAKE_FIELDS = label_table(INTAKE_LABELS)
DEPARTMENT_FIELDS = label_table(DEPARTMENT_LABELS)
PUBLIC_FIELDS = label_table(["no", "yes"])
STREET_TEXTS = np.array(STREETS, dtype=TEXT)
PEOPLE_TEXTS = np.array([f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES], dtype=TEXT)
PLACEHOLDER_SOURCES = ("house", "house_to", "street", "cross", "person", "phone")


@cache
def template_parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """(literal, placeholder) pairs of a description template, already CSV-quoted: placeholder values
    (numbers, street and person names) never contain a comma or a quote, so the literals decide."""
    parts = [(literal, field) for literal, field, _, _ in string.Formatter().parse(template)]
    if not any(c in template for c in CSV_SPECIAL):
        return tuple(parts)
    escaped = [(literal.replace('"', '""'), field) for literal, field in parts]
    return (('"', None), *escaped, ('"', None))


def placeholder_text(field: str, pick: Mapping[str, np.ndarray]) -> np.ndarray:
    """The value of one description placeholder for the picked rows."""
    match field:
        case "addr":
            return np.strings.add(
                np.strings.add(pick["house"].astype(TEXT), " "), STREET_TEXTS[pick["street"]]
            )
        case "num":
            return pick["house"].astype(TEXT)
        case "num2":
            return pick["house_to"].astype(TEXT)
        case "street":
            return STREET_TEXTS[pick["street"]]
        case "cross":
            return STREET_TEXTS[pick["cross"]]
        case "person":
            return PEOPLE_TEXTS[pick["person"]]
        case "phone":
            return np.strings.add(f"{AREA_CODE}-555-0", pick["phone"].astype(TEXT))
    raise ValueError(f"unknown description placeholder {field!r}")


def render_descriptions(pick: Mapping[str, np.ndarray]) -> np.ndarray:
    """Fill each row's template; placeholders are computed only for the rows that use them."""
    template_ids = pick["template"]
    text = np.full(len(template_ids), "", dtype=TEXT)
    for template_id in np.unique(template_ids[template_ids >= 0]):
        rows = template_ids == template_id
        subset = {name: pick[name][rows] for name in PLACEHOLDER_SOURCES}
        filled = np.full(int(rows.sum()), "", dtype=TEXT)
        for literal, field in template_parts(TEMPLATES[template_id]):
            filled = np.strings.add(filled, literal)
            if field is not None:
                filled = np.strings.add(filled, placeholder_text(field, subset))
        text[rows] = filled
    return text


def render_keys(key: np.ndarray, legacy: np.ndarray, created: np.ndarray) -> np.ndarray:
    text = key.astype(TEXT)
    if not legacy.any():
        return text
    year = created[legacy].astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    text[legacy] = np.strings.add(
        np.strings.add(np.strings.zfill((year % 100).astype(TEXT), 2), "-"), np.strings.zfill(text[legacy], 8)
    )
    return text


def render_locations(pick: Mapping[str, np.ndarray]) -> np.ndarray:
    kind = pick["location_kind"]  # 0 point, 1 blank, 2 the bogus placeholder
    text = np.full(len(kind), "", dtype=TEXT)
    placed = kind == 0
    text[placed] = format_points(pick["lon"][placed], pick["lat"][placed])
    text[kind == 2] = BOGUS_LOCATION
    return text


def render_requests(batch: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every export field of ``rows`` as CSV-ready text."""
    pick = {name: values[rows] for name, values in batch.items()}
    return {
        "key": render_keys(pick["key"], pick["legacy"], pick["created"]),
        "created": format_timestamps(pick["created"]),
        "due": format_timestamps(pick["due"]),
        "completed": format_timestamps(pick["completed"], pick["closed"]),
        "on_time": ON_TIME_FIELDS[pick["on_time"]],
        "department": DEPARTMENT_FIELDS[pick["department"]],
        "type": TYPE_FIELDS[pick["type_id"]],
        "description": render_descriptions(pick),
        "code": CODE_FIELDS[pick["code"]],
        "status": STATUS_FIELDS[pick["status"]],
        "intake": INTAKE_FIELDS[pick["intake"]],
        "days": np.where(pick["has_days"], pick["days"].astype(TEXT), ""),
        "sla": SLA_FIELDS[pick["type_id"]],
        "public": PUBLIC_FIELDS[pick["public"].astype(np.int8)],
        "district": np.where(pick["keep_district"], pick["district"].astype(TEXT), ""),
        "location": render_locations(pick),
    }


def write_request_file(path: Path, batch: Mapping[str, np.ndarray], file_index: int) -> int:
    """Newest first, like the Socrata exports; rendered and written in chunks to bound memory.
    Fields are already CSV-quoted, so rows are joined in C rather than fed to csv.writer one by one."""
    rows = np.flatnonzero(batch["file"] == file_index)
    rows = rows[np.argsort(-batch["rank"][rows], kind="stable")]
    columns = FILE_COLUMNS[FILES[file_index]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(csv_field(header) for header, _ in columns) + "\n")
        for start in range(0, len(rows), CHUNK_ROWS):
            fields = render_requests(batch, rows[start : start + CHUNK_ROWS])
            lines = zip(*(fields[name].tolist() for _, name in columns), strict=True)
            handle.write("\n".join(map(",".join, lines)) + "\n")
    return len(rows)


def write_requests(out_dir: Path, geo: Geography, rng: np.random.Generator, total: int) -> dict[str, int]:
    batch = generate_requests(rng, geo, total)
    return {name: write_request_file(out_dir / name, batch, i) for i, name in enumerate(FILES)}


def next_free_number(numbers: Iterable[str]) -> int:
    return max((int(n) for n in numbers if n.isdigit()), default=0) + 1


def resample_requests(source_csv: Path, out_csv: Path, n: int, seed: int = 7) -> int:
    """Write ``n`` rows drawn with replacement from a real 311 export, each with a new unique key.

    Keys keep their system's format, legacy "YY-NNNNNNNN" or a plain integer, so the copy loads like
    the original; the new numbers start above the source's, so no key repeats a source key either.
    Each source row is serialised once; the output is written in chunks, so memory stays small.
    """
    with source_csv.open(newline="", encoding="utf-8") as handle:
        header, *rows = csv.reader(handle)
    keys = [row[0] for row in rows]
    is_legacy = np.array(["-" in key for key in keys])
    legacy_prefix = np.array([key[:3] for key in keys], dtype=TEXT)
    first_key = next_free_number(key for key in keys if "-" not in key)
    first_legacy = next_free_number(key[3:] for key in keys if "-" in key)
    rest_of_row = np.array([",".join(csv_field(value) for value in row[1:]) for row in rows], dtype=object)
    rng = np.random.default_rng(seed)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as out:
        out.write(",".join(csv_field(name) for name in header) + "\n")
        for start in range(0, n, CHUNK_ROWS):
            draw = rng.integers(0, len(rows), min(CHUNK_ROWS, n - start))
            serial = np.arange(start, start + len(draw))
            legacy_keys = np.strings.add(
                legacy_prefix[draw], np.strings.zfill((first_legacy + serial).astype(TEXT), 8)
            )
            new_keys = np.where(is_legacy[draw], legacy_keys, (first_key + serial).astype(TEXT))
            lines = zip(new_keys.tolist(), rest_of_row[draw].tolist(), strict=True)
            out.write("\n".join(map(",".join, lines)) + "\n")
    return n


# --------------------------------------------------------------------------------------------
# Boundaries
# --------------------------------------------------------------------------------------------

COUNCIL_MEMBERS_2022 = (
    "Avery Whitfield", "Marcus Okafor", "Denise Rutledge", "Harold Prewitt", "Rosa Sandoval",
    "Beth Lindqvist", "Tyrone Haskins", "Nadia Castellano", "Wendell McBride",
)  # fmt: skip
# The GeoJSON is newer: five districts have elected someone else since (as in the real pair of files).
COUNCIL_MEMBERS_NEWER = dict(enumerate(COUNCIL_MEMBERS_2022, start=1)) | {
    3: "Quinn Abernathy",
    4: "Carlos Delgado",
    5: "Jamie Tillman",
    6: "Reese Nakamura",
    9: "Dakota Vance",
}


def web_mercator(geom: shapely.Geometry) -> shapely.Geometry:
    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = np.radians(coords[:, 0]), np.radians(coords[:, 1])
        return WEB_MERCATOR_RADIUS_M * np.column_stack((lon, np.log(np.tan(np.pi / 4 + lat / 2))))

    return shapely.transform(geom, convert)


def area_acres(geom: shapely.Geometry) -> float:
    return geom.area * KM_PER_DEG_LAT * KM_PER_DEG_LON * SQ_KM_TO_ACRES


def write_city_limits(path: Path, geo: Geography, rng: np.random.Generator) -> int:
    resident_2018 = geo.piece_population.sum()
    growth = np.cumprod(rng.uniform(1.02, 1.22, 8))
    populations = np.round(resident_2018 * 0.93 * growth / growth[-1]).astype(int)
    header = [
        "acres", "multipolygon", "name", "pop1930", "pop1940", "pop1950", "pop1960", "pop1970", "pop1980",
        "pop1990", "pop_2000",
    ]  # fmt: skip
    row = [
        f"{area_acres(geo.city):.3f}",
        wkt(as_multipolygon(geo.city), -1),
        CITY_NAME,
        *map(str, populations),
    ]
    return write_csv(path, header, [row])


def write_council_districts(path: Path, geo: Geography) -> int:
    rows = (
        [wkt(district, -1), str(number), COUNCIL_MEMBERS_2022[number - 1]]
        for number, district in enumerate(geo.districts, start=1)
    )
    return write_csv(path, ["the_geom", "citydst", "cityrep"], rows)


def write_council_districts_geojson(path: Path, geo: Geography, rng: np.random.Generator) -> int:
    features = []
    for i in rng.permutation(len(geo.districts)):
        district, number = geo.districts[i], int(i) + 1
        projected = web_mercator(district)
        properties = {
            "council": str(number),
            "rep_counci": COUNCIL_MEMBERS_NEWER[number],
            "shape_leng": f"{projected.length:.12g}",
            "shape_area": f"{projected.area:.12g}",
        }
        feature = {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(district),
            "properties": properties,
        }
        features.append(json.dumps(feature, separators=(",", ":")))
    crs = '"crs" : { "type": "name", "properties": { "name": "urn:ogc:def:crs:OGC:1.3:CRS84" } }'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{ "type": "FeatureCollection", "features": [' + ",".join(features) + "], " + crs + " }")
    return len(features)


def neighborhood_description(rng: np.random.Generator, name: str) -> str:
    def person() -> tuple[str, str]:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        return f"{first} {last}", f"{first[0].lower()}{last.lower()}@example.org"

    president, email = person()
    specialist, specialist_email = person()
    place = f"{rng.integers(100, 3999)} {rng.choice(STREETS)}"
    day = (
        f"{rng.choice(['1st', '2nd', '3rd', '4th'])} {rng.choice(['Monday', 'Tuesday', 'Thursday'])} Monthly"
    )
    phone = f"{AREA_CODE}-555-0{rng.integers(100, 200)}"
    style = rng.random()
    if style < 0.1:  # the old tab-separated form of a few real entries
        return (
            f"President:\t{president} \tContact Information:\t{email}\tMeeting Location:\t{place}\t"
            f"Meeting Date(s)/Time:\t{day}, 5:00 PM\t"
            f"Neighborhood Relations Specialist:\t{specialist}\tat\t{phone}\xa0 \xa0 \xa0"
        )
    heading = f"{name}<br>" if style < 0.35 else ""
    meeting_time = rng.choice(["6:00PM", "6:30 PM", "7PM"])
    return (
        f"{heading}President: {president}<br><br>Contact Information: {email}<br><br>"
        f"Meeting Location: {place}<br><br>Day/Time: {day}, {meeting_time}<br><br>"
        f"Neighborhood Relations Specialist: {specialist} at {phone} or {specialist_email}"
    )


def write_neighborhoods(path: Path, geo: Geography, rng: np.random.Generator) -> int:
    rows = (
        [name, neighborhood_description(rng, name), wkt(geom, 7)]
        for name, geom in zip(geo.neighborhood_names, geo.neighborhood_geoms, strict=True)
    )
    return write_csv(path, ["name", "description", "boundary"], rows)


def write_zip_codes(path: Path, geo: Geography) -> int:
    rows = (
        [code, wkt(geom), str(row)]
        for row, (code, geom) in enumerate(zip(geo.zip_codes, geo.zip_geoms, strict=True), start=1)
    )
    return write_csv(path, ["Zip Code", "geom", "RowNum"], rows)


# --------------------------------------------------------------------------------------------
# Census (ACS tables are on 2010 tracts, like the real ones)
# --------------------------------------------------------------------------------------------

POVERTY_COLUMNS = (
    "Total; Estimate; Population for whom poverty status is determined",
    "Total; Margin of Error; Population for whom poverty status is determined",
    "Below poverty level; Estimate; Population for whom poverty status is determined",
    "Below poverty level; Margin of Error; Population for whom poverty status is determined",
    "Percent below poverty level; Estimate; Population for whom poverty status is determined",
    "Percent below poverty level; Margin of Error; Population for whom poverty status is determined",
)
RACE_COLUMNS = (
    "Minority %",
    "Estimate; Total:",
    "Margin of Error; Total:",
    "Estimate; Not Hispanic or Latino: - White alone",
    "Margin of Error; Not Hispanic or Latino: - White alone",
)


@dataclass(frozen=True)
class TractStatistics:
    median_income: np.ndarray
    poverty_universe: np.ndarray
    below_poverty: np.ndarray
    minority_share: np.ndarray
    housing_units: np.ndarray
    vacancy_share: np.ndarray
    population_2018: np.ndarray


def logistic(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def tract_statistics(rng: np.random.Generator, tracts: Tracts) -> TractStatistics:
    """Income, poverty and minority share all follow the tract's deprivation score, with noise."""
    n, z, pop = len(tracts.codes), tracts.deprivation, tracts.population
    income = np.clip(52_000 * np.exp(-0.38 * z + rng.normal(0, 0.12, n)), 12_000, 150_000)
    universe = np.round(pop * rng.uniform(0.93, 0.99, n)).astype(np.int64)
    return TractStatistics(
        median_income=np.round(income).astype(np.int64),
        poverty_universe=universe,
        below_poverty=np.round(universe * logistic(-1.9 + 0.95 * z + rng.normal(0, 0.25, n))).astype(
            np.int64
        ),
        minority_share=logistic(-1.2 + 1.3 * z + rng.normal(0, 0.5, n)),
        housing_units=np.round(pop / rng.uniform(2.1, 2.6, n)).astype(np.int64),
        vacancy_share=logistic(-2.3 + 0.5 * z + rng.normal(0, 0.3, n)),
        population_2018=np.round(pop * (1 + rng.normal(0.008, 0.03, n))).astype(np.int64),
    )


def margin_of_error(rng: np.random.Generator, estimate: np.ndarray) -> np.ndarray:
    """ACS-like 90% margins: roughly proportional to the square root, never below 12."""
    noise = rng.uniform(0.8, 1.25, len(estimate))
    return np.maximum(np.round((7 * np.sqrt(estimate) + 0.12 * estimate) * noise), 12).astype(np.int64)


def tract_label(code: str) -> str:
    number = str(int(code[:4])) + ("" if code[4:] == "00" else f".{code[4:]}")
    return f"Census Tract {number}, {COUNTY_NAME}, {STATE_NAME}"


def census_ids(code: str) -> list[str]:
    geoid = f"{STATE_FIPS}{COUNTY_FIPS}{code}"
    return [f"1400000US{geoid}", geoid, code, tract_label(code)]


def write_tracts_2010(path: Path, geo: Geography, rng: np.random.Generator) -> int:
    tracts = geo.tracts_2010
    rows = (
        [STATE_FIPS, COUNTY_FIPS.lstrip("0"), tracts.codes[i], wkt(tracts.geoms[i])]
        for i in rng.permutation(len(tracts.codes))
    )
    return write_csv(path, ["State FIP", "County FIP", "Tract ID", "geom"], rows)


def write_tracts_2020(path: Path, geo: Geography) -> int:
    rows = (
        [STATE_FIPS, COUNTY_FIPS, code, f"{STATE_FIPS}{COUNTY_FIPS}{code}", wkt(geom)]
        for code, geom in zip(geo.tracts_2020_codes, geo.tracts_2020_geoms, strict=True)
    )
    return write_csv(path, ["STATEFP20", "COUNTYFP20", "TRACTCE20", "GEOID20", "geometry"], rows)


def write_median_income(path: Path, tracts: Tracts, stats: TractStatistics, order: np.ndarray) -> int:
    header = [
        "STATE_FIP",
        "COUNTY_FIP",
        "TRACT_ID",
        "Median household income in the past 12 months",
        "geometry_wkt",
    ]
    # Nobody lives in the special land-use tracts, so they have no median income.
    income = [
        str(v) if people else "" for v, people in zip(stats.median_income, tracts.population, strict=True)
    ]
    rows = ([STATE_FIPS, COUNTY_FIPS, tracts.codes[i], income[i], wkt(tracts.geoms[i])] for i in order)
    return write_csv(path, header, rows)


def write_poverty(path: Path, tracts: Tracts, stats: TractStatistics, rng: np.random.Generator) -> int:
    universe_moe = margin_of_error(rng, stats.poverty_universe)
    below_moe = margin_of_error(rng, stats.below_poverty)

    def row(i: int) -> list[str]:
        universe, below = stats.poverty_universe[i], stats.below_poverty[i]
        if universe == 0:  # nobody lives there: no rate, and the census marks its margin "(X)"
            return [*census_ids(tracts.codes[i]), "1", "0", "12", "0", "12", "", "(X)"]
        percent = 100 * below / universe
        percent_moe = min(100 * below_moe[i] / universe, 100.0)
        counts = [universe, universe_moe[i], below, below_moe[i]]
        high_poverty = str(int(percent >= 20))
        return [
            *census_ids(tracts.codes[i]),
            high_poverty,
            *map(str, counts),
            plain_number(percent, 1),
            plain_number(percent_moe, 1),
        ]

    header = ["Id", "Id2", "tract ID", "Geography", "High Poverty Area", *POVERTY_COLUMNS]
    return write_csv(path, header, (row(i) for i in np.argsort(tracts.codes, kind="stable")))


def write_race_ethnicity(path: Path, tracts: Tracts, stats: TractStatistics, rng: np.random.Generator) -> int:
    white = np.round(tracts.population * (1 - stats.minority_share)).astype(np.int64)
    total_moe, white_moe = margin_of_error(rng, tracts.population), margin_of_error(rng, white)

    def row(i: int) -> list[str]:
        total = tracts.population[i]
        if total == 0:
            return [*census_ids(tracts.codes[i]), "", "0", "12", "0", "12", wkt(tracts.geoms[i])]
        minority = f"{100 * (1 - white[i] / total):.2f}"
        return [*census_ids(tracts.codes[i]), minority, str(total), str(total_moe[i]), str(white[i]),
                str(white_moe[i]), wkt(tracts.geoms[i])]  # fmt: skip

    header = ["Id", "Id2", "tract ID", "Geography", *RACE_COLUMNS, "geom"]
    return write_csv(path, header, (row(i) for i in np.argsort(tracts.codes, kind="stable")))


def write_occupancy(path: Path, tracts: Tracts, stats: TractStatistics, order: np.ndarray) -> int:
    def row(i: int) -> list[str]:
        total = stats.housing_units[i]
        ids = [tracts.codes[i], COUNTY_FIPS.lstrip("0"), STATE_FIPS, wkt(tracts.geoms[i])]
        if total == 0:
            return ["", "", "", "", "0", *ids]
        vacant = int(np.round(total * stats.vacancy_share[i]))
        occupied = total - vacant
        shares = [f"{100 * vacant / total:.2f}", f"{100 * occupied / total:.2f}"]
        return [str(vacant), shares[0], str(occupied), shares[1], str(total), *ids]

    header = [
        "Total Vacant", "Percent Vacant", "Total Occupied", "Percent Occupied", "Total", "tract", "county",
        "state", "geometry_wkt",
    ]  # fmt: skip
    return write_csv(path, header, (row(i) for i in order))


def write_population_2018(path: Path, tracts: Tracts, stats: TractStatistics, order: np.ndarray) -> int:
    people = [str(v) if v else "" for v in np.where(tracts.population > 0, stats.population_2018, 0)]
    rows = ([STATE_FIPS, COUNTY_FIPS, tracts.codes[i], people[i], wkt(tracts.geoms[i])] for i in order)
    return write_csv(path, ["state", "county", "tract", "population", "geom"], rows)


def write_census(out_dir: Path, geo: Geography, rng: np.random.Generator) -> dict[str, int]:
    tracts = geo.tracts_2010
    stats = tract_statistics(rng, tracts)
    n = len(tracts.codes)
    return {
        "census/tracts_2010_demo.csv": write_tracts_2010(out_dir / "census/tracts_2010_demo.csv", geo, rng),
        "census/tracts_2020_demo.csv": write_tracts_2020(out_dir / "census/tracts_2020_demo.csv", geo),
        "census/acs2017_median_household_income_demo.csv": write_median_income(
            out_dir / "census/acs2017_median_household_income_demo.csv", tracts, stats, rng.permutation(n)
        ),
        "census/acs2017_poverty_S1701_demo.csv": write_poverty(
            out_dir / "census/acs2017_poverty_S1701_demo.csv", tracts, stats, rng
        ),
        "census/acs2017_race_ethnicity_demo.csv": write_race_ethnicity(
            out_dir / "census/acs2017_race_ethnicity_demo.csv", tracts, stats, rng
        ),
        "census/acs2017_occupancy_demo.csv": write_occupancy(
            out_dir / "census/acs2017_occupancy_demo.csv", tracts, stats, rng.permutation(n)
        ),
        "census/acs2018_population_demo.csv": write_population_2018(
            out_dir / "census/acs2018_population_demo.csv", tracts, stats, rng.permutation(n)
        ),
    }


# --------------------------------------------------------------------------------------------
# Facilities
# --------------------------------------------------------------------------------------------

YFD_PLACES = (
    "Eastgate", "Riverside", "Hollis", "Maple Heights", "Southside", "Millbrook", "Northshore", "Westview",
    "Brookside", "Fairhaven", "Copper Ridge", "Laurel Park",
)  # fmt: skip
YFD_AMENITIES = (
    "LEXIA Free Reading Program", "Computer Lab", "Full Size Gym", "Career Preparation Center",
    "Outdoor Pool", "Game Room", "Community Room", "Full Kitchen", "Outdoor Walking Track", "Playground",
    "2 Tennis Courts", "Ballfield", "Disc Golf Course", "Fitness Room", "Arts and Crafts Room",
    "After School Programs",
)  # fmt: skip
YFD_HOURS = (
    "Monday-Friday 11:30am-8pm and Saturday 10:00-6:30pm", "Monday-Friday 9am-8pm and Saturday 10:30-6pm",
)  # fmt: skip
RECREATION_FACILITIES = ("Summit Softball Complex", "Riverfront Aquatics Center Indoor Pool")


def zip_code_at(geo: Geography, lon: float, lat: float) -> str:
    inside = shapely.contains_xy(geo.zip_geoms, lon, lat)
    return str(geo.zip_codes[np.argmax(inside)]) if inside.any() else ""


def spread_points(rng: np.random.Generator, geo: Geography, count: int) -> np.ndarray:
    """Fire stations cover the city: greedy farthest-point choice among random candidates."""
    lon, lat = random_points_in(rng, geo.city, geo.city, 3000)
    xy = lonlat_to_km(lon, lat)
    chosen = [int(np.argmin(np.hypot(xy[:, 0], xy[:, 1])))]
    nearest = np.hypot(*(xy - xy[chosen[0]]).T)
    while len(chosen) < count:
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.hypot(*(xy - xy[chosen[-1]]).T))
    return np.column_stack((lon[chosen], lat[chosen]))


def tax_map_number(rng: np.random.Generator) -> str:
    map_page, block = rng.choice(list("ABCDEFGHJKLMNOP"), size=2)
    number = f"{rng.integers(90, 170):03d}{map_page} {block} {rng.integers(1, 60):03d}"
    return number + (f".{rng.integers(1, 16):02d}" if rng.random() < 0.5 else "")


def write_fire_stations(path: Path, geo: Geography, rng: np.random.Generator, count: int = 12) -> int:
    points = spread_points(rng, geo, count)
    object_ids = rng.permutation(count) + 1
    station_numbers = rng.permutation(count) + 1
    unstaffed = set(rng.choice(count, size=2, replace=False).tolist())
    rows = []
    for i, (lon, lat) in enumerate(points):
        # Unstaffed stations have no station id ("0") and no phone number, as in the real list.
        station_id = "0" if i in unstaffed else str(rng.integers(310, 350))
        phone = "" if i in unstaffed else f"{AREA_CODE}-555-0{rng.integers(100, 200)}"
        address = f"{rng.integers(100, 9000)} {rng.choice(STREETS)}"
        postal_city = CITY_NAME if lat < LAT0 + 0.04 else f"North {CITY_NAME}"
        rows.append([
            point_wkt(lon, lat, 12), str(object_ids[i]), CITY_NAME, station_id, address, postal_city, "TN",
            zip_code_at(geo, lon, lat), phone, tax_map_number(rng), "FIRE", f"Station {station_numbers[i]}",
        ])  # fmt: skip
    header = [
        "the_geom", "OBJECTID", "FIRETYPE", "STATION_ID", "ADDRESS", "CITY", "STATE", "ZIP_CODE", "PHONE_NO",
        "TAXMAPNO", "TYPE", "NAME",
    ]  # fmt: skip
    return write_csv(path, header, [rows[i] for i in rng.permutation(count)])


def write_yfd_centers(path: Path, geo: Geography, rng: np.random.Generator) -> int:
    need = geo.piece_population * np.exp(0.8 * geo.tracts_2010.deprivation[geo.piece_tract])
    names = [f"{place} YFD Center" for place in YFD_PLACES] + list(RECREATION_FACILITIES)
    rows = []
    for name in names:
        piece = rng.choice(len(geo.pieces), p=need / need.sum())
        lon, lat = (float(v[0]) for v in random_points_in(rng, geo.pieces[piece], geo.city, 1))
        lon, lat = round(lon, 9), round(lat, 9)
        recreation = name in RECREATION_FACILITIES
        amenities = "".join(rng.choice(YFD_AMENITIES, size=rng.integers(3, 9), replace=False))
        # Float noise from an upstream conversion shows up in about a third of the real geometries.
        geom_lat = lat + 1e-14 if rng.random() < 0.3 else lat
        phone = f"({AREA_CODE}) 555-0{rng.integers(100, 200)}"
        kind, hours = (
            ("Recreational Facility", "") if recreation else ("YFD Center", str(rng.choice(YFD_HOURS)))
        )
        address = f"{rng.integers(100, 6000)} {rng.choice(STREETS)}"
        # The real recreational facilities have latitude and longitude swapped.
        latitude, longitude = (lon, lat) if recreation else (lat, lon)
        rows.append([
            name, kind, amenities, hours, address, phone, repr(latitude), repr(longitude),
            f"POINT ({lon!r} {geom_lat!r})",
        ])  # fmt: skip
    # As in the real list: two programmes share one building, and one phone number lacks its space.
    for column in (4, 6, 7, 8):  # Address, Latitude, Longitude, geom
        rows[1][column] = rows[0][column]
    rows[-3][5] = rows[-3][5].replace(") ", ")")
    header = [
        "YFD Facility Name", "Facility Type", "Facility Available", "Hours of Operation", "Address", "Phone",
        "Latitude", "Longitude", "geom",
    ]  # fmt: skip
    return write_csv(path, header, rows)


# --------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    category: str
    description: str
    expense_type: str
    median: float


LINE_ITEMS = (
    LineItem("Salaries", "Regular Employees", "Salaries & Wages", 420_000),
    LineItem("Salaries", "Overtime", "Overtime", 40_000),
    LineItem("Salaries", "Temporary Staffing", "Salaries & Wages", 30_000),
    LineItem("Fringe Benefits", "Medicare", "Payroll Taxes", 7_000),
    LineItem("Fringe Benefits", "FICA (OASDI)", "Payroll Taxes", 28_000),
    LineItem("Fringe Benefits", "Hospitalization", "Insurance", 90_000),
    LineItem("Fringe Benefits", "Life Insurance Benefit", "Insurance", 1_500),
    LineItem("Fringe Benefits", "Long-Term Disability", "Insurance", 1_200),
    LineItem("Fringe Benefits", "General Pension", "Pension", 40_000),
    LineItem("Fringe Benefits", "Other Post-employment Benefits (OPEB)", "Other Fringe Benefits", 20_000),
    LineItem("Fringe Benefits", "On-site Medical Program", "Other Fringe Benefits", 8_000),
    LineItem("Fringe Benefits", "Longevity", "Other Supplements", 5_000),
    LineItem("Services", "Water", "Utilities", 5_000),
    LineItem("Services", "Electricity", "Utilities", 30_000),
    LineItem("Services", "Dues", "Other Services", 800),
    LineItem("Services", "Local Mileage", "Other Services", 300),
    LineItem("Services", "Professional Services", "Professional Services", 25_000),
    LineItem("Services", "Repair & Maintenance - Buildings", "Repair & Maintenance Services", 15_000),
    LineItem("Services", "Cellular Phone Service", "Telecommunications", 4_000),
    LineItem("Materials & Supplies", "Office Supplies & Stationery", "Office Supplies", 2_000),
    LineItem(
        "Materials & Supplies",
        "Other Materials & Supplies Parent (714101-719999)",
        "Other Materials & Supplies",
        6_000,
    ),
    LineItem("Materials & Supplies", "Asphalt & Paving Materials", "Construction Supplies", 12_000),
    LineItem("Travel Expense", "Staff Training", "Staff Training", 3_000),
    LineItem("Travel Expense", "Meals & Lodging", "Meals & Lodging", 2_000),
    LineItem("Vehicle Operating Expense", "Fuel", "Fuel", 20_000),
    LineItem(
        "Vehicle Operating Expense", "Vehicle Repairs & Maintenance", "Vehicle Repairs & Maintenance", 15_000
    ),
    LineItem("Other Expenses", "Miscellaneous Expenses", "Miscellaneous Expenses", 2_000),
    LineItem("Capital Outlay", "Other Equipment", "Other Equipment", 20_000),
    LineItem("Insurance, Claims, Damages", "Self-insurance Claims", "Self-insurance Claims", 25_000),
    LineItem(
        "Other Financing Uses",
        "Transfer to Capital Projects Fund",
        "Transfers To Capital Projects Funds",
        150_000,
    ),
)
# FY2024+ exports regroup categories and rename expense types.
CURRENT_CATEGORY = {
    "Salaries": "Personnel",
    "Fringe Benefits": "Personnel",
    "Other Financing Uses": "Transfers To",
}
CURRENT_EXPENSE_TYPE = {
    "Salaries": "Salary and Wages", "Fringe Benefits": "Fringe Benefits", "Services": "Services",
    "Materials & Supplies": "Materials & Supplies", "Travel Expense": "Travel Expense",
    "Vehicle Operating Expense": "Vehicle Operating", "Other Expenses": "Other Expenses",
    "Capital Outlay": "Capital Outlay", "Insurance, Claims, Damages": "Insurance, Claims, and Damages",
    "Other Financing Uses": "Other Financing Uses",
}  # fmt: skip

# (service, department, programs); departments owning 311 request types are all here.
OPERATING_UNITS_FY2015_2021 = (
    ("Public Safety", "Fire", (
        "Fire Administration", "Fire Operations Division", "Fire Marshal Staff", "Fire Station # 2 Eastside",
        "Fire Station # 5 Riverside",
    )),
    ("Public Safety", "Police", (
        "Police Administration", "Police Patrol Division", "Police Special Operations", "Major Crimes",
        "Police Training Academy",
    )),
    ("Public Works", "Public Works", (
        "Public Works Admin", "Street Maintenance - Potholes", "Garbage Pick-up", "Brush & Bulky Trash",
        "Building Maintenance", "Park Mgmt - City-Wide Park Maintenance",
    )),
    ("Public Works", "Design Engineering", (
        "Design Engineering Admin", "Sidewalk Program", "Land Development Office",
    )),
    ("Public Works", "Wastewater", (
        "Wastewater Admin", "Sewer Collection System", "Odor Control", "Biosolids Management",
    )),
    ("Transportation", "Transportation", (
        "Transportation Admin", "Traffic Operations", "Traffic Engineering", "Street Lighting",
    )),
    ("Youth and Family Development", "Youth & Family Development", (
        "Recreation Admin", "YFD Centers", f"Outdoor {CITY_NAME}", "Aquatics",
    )),
    ("Economic and Community Development", "Economic & Community Development", (
        "Code Enforcement Office", "Neighborhood Services",
    )),
    ("General Government", "Finance", ("Finance Office", "Treasury")),
    ("General Government", "Human Resources", ("Human Resources Admin", "Employee Benefits")),
    ("General Government", "Information Technology", ("Information Technology",)),
    ("General Government", "City Council", ("City Council",)),
    ("General Government", "City Attorney", ("City Attorney Operations",)),
    ("General Government", "Judges", ("City Judges Division 1", "City Judges Division 2")),
    ("General Government", "Internal Audit", ("Internal Audit",)),
    ("General Government", "Purchasing", ("Purchasing",)),
    ("General Government", "Executive Department", ("Mayor's Office", "Office of Performance Management")),
    ("General Government", "311 Call Center", ("311 Call Center Operations",)),
    ("Agencies", "Agencies", ("Public Library", "Regional Planning Agency", "Area Transit Subsidy")),
)  # fmt: skip
# Departments renamed mid-series in the real export: old name -> (first fiscal year of new name, new name).
RENAMED_DEPARTMENTS = {
    "Youth & Family Development": (2019, "Youth & Family"),
    "Finance": (2017, "Finance & Admin"),
    "Executive Department": (2017, "Executive Branch"),
    "311 Call Center": (2019, "311 - Call Center"),
}
OPERATING_UNITS_FY2024_2025 = (
    ("Public Safety", "Fire", (
        "Fire Administration", "Fire Operations Division", "Fire Logistics & Technology",
    )),
    ("Public Safety", "Police", (
        "Police Administration", "Police Patrol Division", "Police Special Operations",
    )),
    ("Public Works", "Public Works", (
        "Public Works Admin", "Street Maintenance - Potholes", "Solid Waste Collection",
        "Brush & Bulky Trash", "Downtown Campuses Building Maintenance",
    )),
    ("Public Works", "Design Engineering", ("Design Engineering Admin", "Sidewalk Program")),
    ("Public Works", "Wastewater", ("Wastewater Admin", "Sewer Collection System", "Odor Control")),
    ("Transportation", "Transportation", ("Transportation Admin", "Traffic Operations", "Street Lighting")),
    ("Parks & Outdoors", "Parks and Outdoors", (
        "Parks & Outdoors Admin", "Parks Maint City Wide Park Maintenance", "Aquatics",
    )),
    ("Youth and Family Development", "Youth & Family Development", ("YFD Centers", "Youth Employment")),
    ("Education & Community Development", "Community Development", (
        "Code Enforcement Office", "Homeless and Supportive Housing",
    )),
    ("Economic Development & Planning", "City Planning", ("City Planning",)),
    ("General Government", "Finance & Admin", ("Finance Office", "Treasury")),
    ("General Government", "Human Resources", ("Human Resources Admin",)),
    ("General Government", "Information Technology", ("Information Technology",)),
    ("General Government", "City Council", ("City Council",)),
    ("General Government", "Judges", ("City Judges Division 1", "City Judges Division 2")),
    ("General Government", "Executive Branch", ("Executive Office Admin",)),
    ("General Government", "311 - Call Center", ("311 Call Center Operations",)),
    ("Agencies Appropriations", "Agencies", ("Public Library", "Area Transit Subsidy")),
)  # fmt: skip
LARGE_DEPARTMENTS = {"Fire", "Police", "Public Works", "Wastewater"}
OPERATING_HEADER = [
    "Fiscal Year", "Service", "Department", "Program", "Expense Category", "Recommended Amount",
    "Approved Amount", "Fund", "Fund Type", "Description", "Expense Type",
]  # fmt: skip
GENERAL_FUND = ("General Fund", "Tax Supported Fund")


@dataclass(frozen=True)
class BudgetLine:
    fiscal_year: int
    service: str
    department: str
    program: str
    item: LineItem
    recommended: float


def department_name(department: str, fiscal_year: int) -> str:
    first_year, new_name = RENAMED_DEPARTMENTS.get(department, (10_000, department))
    return new_name if fiscal_year >= first_year else department


def budget_lines(
    rng: np.random.Generator, units: Sequence[tuple[str, str, tuple[str, ...]]], years: Sequence[int]
) -> Iterator[BudgetLine]:
    """The same program lines recur every year with drift and some churn, as in the real budgets."""
    personnel = np.array([item.category in CURRENT_CATEGORY for item in LINE_ITEMS])
    for service, department, programs in units:
        for program in programs:
            scale = rng.lognormal(0, 0.6) * (3 if department in LARGE_DEPARTMENTS else 1)
            carried = np.flatnonzero(rng.random(len(LINE_ITEMS)) < np.where(personnel, 0.85, 0.45))
            for year in years:
                for i in carried[rng.random(len(carried)) > 0.08]:
                    item = LINE_ITEMS[i]
                    amount = item.median * scale * 1.03 ** (year - years[0]) * rng.lognormal(0, 0.25)
                    amount = 0.0 if rng.random() < 0.2 else round(amount, -1 if amount < 5000 else 0)
                    yield BudgetLine(year, service, department, program, item, amount)


def write_operating_budget(path: Path, rng: np.random.Generator) -> int:
    def row(line: BudgetLine) -> list[str]:
        approved = (
            line.recommended if rng.random() > 0.06 else round(line.recommended * rng.uniform(0.8, 1.2))
        )
        blank_recommended = rng.random() < {2015: 0.05, 2016: 0.15}.get(line.fiscal_year, 0.0)
        amended = ""
        if line.fiscal_year == 2021:  # the amended column only exists for the last year
            amended = plain_number(approved * (1 if rng.random() > 0.1 else rng.uniform(0.9, 1.1)))
        department = department_name(line.department, line.fiscal_year)
        recommended = "" if blank_recommended else f"{line.recommended:.2f}"
        return [
            str(line.fiscal_year), line.service, department, line.program, line.item.category, recommended,
            f"{approved:.2f}", *GENERAL_FUND, line.item.description, line.item.expense_type, amended,
        ]  # fmt: skip

    header = [*OPERATING_HEADER, "amended"]
    lines = sorted(
        budget_lines(rng, OPERATING_UNITS_FY2015_2021, range(2015, 2022)), key=lambda b: -b.fiscal_year
    )
    rows = [row(line) for line in lines]
    zero_rows = [i for i, r in enumerate(rows) if r[6] == "0.00"]
    for i in rng.choice(zero_rows, size=2, replace=False):  # two signed zeros, as in the real export
        rows[i][6] = "-0.00"
    return write_csv(path, header, rows)


def write_operating_expenses(path: Path, rng: np.random.Generator) -> int:
    def row(line: BudgetLine) -> list[str]:
        recommended = f"{line.recommended:.0f}"
        approved = "" if line.fiscal_year == 2024 else recommended  # FY2024 was published unapproved
        category = CURRENT_CATEGORY.get(line.item.category, "Operations")
        return [
            str(line.fiscal_year), line.service, line.department, line.program, category, recommended,
            approved, *GENERAL_FUND, line.item.description, CURRENT_EXPENSE_TYPE[line.item.category],
        ]  # fmt: skip

    lines = sorted(budget_lines(rng, OPERATING_UNITS_FY2024_2025, (2024, 2025)), key=lambda b: -b.fiscal_year)
    return write_csv(path, OPERATING_HEADER, (row(line) for line in lines))


CAPITAL_PROJECTS = (  # (service, department, project)
    ("Transportation", "Transportation", "Pavement Management"),
    ("Transportation", "Transportation", "Sidewalk Gap Program"),
    ("Transportation", "Transportation", "Streetlight LED Conversion"),
    ("Transportation", "Transportation", "Traffic Signal Upgrades"),
    ("Transportation", "Transportation", "CMAQ Bike Lanes"),
    ("Roads", "Public Works", "Street Improvements (paving)"),
    ("Public Works", "Public Works", "Fleet Capital Infusion"),
    ("Public Works", "Public Works", "Heavy Equipment"),
    ("Public Works", "Public Works", "Solid Waste Cart Replacement"),
    ("Public Works", "Public Works", "Building Roof Replacements"),
    ("Public Works - Enterprise Funds", "Wastewater", "SSO Abatement Program"),
    ("Public Works - Enterprise Funds", "Wastewater", "Pump Station Odor Control"),
    ("Interceptor Sewer System", "Interceptor Sewer System", "Biosolids Dewatering Upgrade"),
    ("Public Works", "Design Engineering", "ADA Curb Ramp Program"),
    ("Public Safety", "Fire Department", "Fire Station 4 Replacement"),
    ("Public Safety", "Fire Department", "Equipment Capital Maintenance"),
    ("Public Safety", "Fire Department", "Fire Apparatus Replacement"),
    ("Public Safety", "Police Department", "In-Car Laptops"),
    ("Public Safety", "Police Department", "Law Enforcement Training Center"),
    ("Youth & Family Development", "Youth & Family Development", "YFD Center Renovations"),
    ("Youth & Family Development", "Youth & Family Development", "Playground Replacements"),
    ("General Government", "General Government", "City Network Rebuild"),
    ("Library", "General Government", "Library ADA Accessibility Improvements"),
    ("Economic & Community Development", "Economic & Community Development", "Blight Demolition Program"),
    ("Economic & Community Development", "Economic and Community Development", "Affordable Housing Fund"),
)
CAPITAL_FUNDS = (
    ("City Funds", "Reserves"), ("City Funds", "Pay-As-You-Go"), ("City Funds", "Operations"),
    ("City Funds", "Economic Development"), ("Local", "Pay-As-You-Go"), ("Local", "Pay-As-You Go"),
    ("External", "Federal"), ("External", "Other External"), ("External", "FEMA"),
    ("User Fees", "Pay-As-You-Go"),
    ("State Revolving Loan Fund", "SRF"), ("City Funds", "Other City Sources"),
)  # fmt: skip
ROUND_AMOUNTS = (50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 750_000, 1_000_000,
                 1_500_000, 2_000_000, 4_500_000)  # fmt: skip


def capital_amount(rng: np.random.Generator) -> str:
    amount = int(rng.choice(ROUND_AMOUNTS)) if rng.random() < 0.8 else int(rng.integers(20, 3000)) * 1000
    return str(-amount if rng.random() < 0.05 else amount)  # re-appropriations take funding back


def write_capital_budget(path: Path, rng: np.random.Generator) -> int:
    project_ids: dict[str, str] = {}
    rows = []
    for year in range(2016, 2026):
        chosen = rng.choice(len(CAPITAL_PROJECTS), size=rng.integers(14, 22), replace=False)
        for sequence, p in enumerate(sorted(chosen), start=1):
            service, department, project = CAPITAL_PROJECTS[p]
            if project not in project_ids or rng.random() < 0.5:
                width = 3 if year in (2016, 2022) else 2  # FY16 and FY22 ids were zero-padded to 3 digits
                project_ids[project] = f"FY{year % 100}-{sequence:0{width}d}"
            if year >= 2020 and service == "Public Works - Enterprise Funds":
                service = "Public Works-Enterprise Fund"
            for _ in range(rng.choice([1, 1, 2])):
                fund_type, fund = CAPITAL_FUNDS[rng.integers(len(CAPITAL_FUNDS))]
                amount = capital_amount(rng)
                # "Thru FY Actuals" is blank in every row of the real export.
                rows.append(
                    [
                        str(year),
                        service,
                        department,
                        project,
                        project_ids[project],
                        fund_type,
                        fund,
                        "",
                        amount,
                    ]
                )
    rows[rng.integers(len(rows))][3] = ""  # one project name is missing in the real export
    header = [
        "Fiscal Year", "Service", "Department", "Project", "Project ID", "Fund Type", "Fund",
        "Thru FY Actuals", "FY Approved",
    ]  # fmt: skip
    return write_csv(path, header, [rows[i] for i in np.argsort([-int(r[0]) for r in rows], kind="stable")])


LEDGER_ACCOUNTS = (  # (segments, first period, typical monthly activity, period names in upper case)
    ("2070.A.A74001.502101.000000.000000.000000.000000", "2018-06", 720_000, False),
    ("2070.A.A74003.502103.000000.000000.000000.000000", "2020-07", 80_000, False),
    ("1111.A.A70001.523202.000000.000000.000000.000000", "2018-06", 1_500_000, False),
    ("1111.A.A70001.523205.000000.000000.000000.000000", "2021-09", 16_000, False),
    ("1100.C.C00100.523201.000000.000000.000000.000000", "2018-06", 2_000_000, True),
    ("1100.C.C00100.522301.000000.000000.000000.000000", "2018-06", 1_700_000, True),
)
LAST_LEDGER_PERIOD = np.datetime64("2024-02")


def ledger_periods(first: str, upper: bool) -> Iterator[tuple[str, np.datetime64, np.datetime64, float]]:
    """(period name, start, end, sort order) per month, with an ADJ period at each fiscal year end.
    July is mostly absent (it appears in one year only), as in the real ledger extract."""
    last = LAST_LEDGER_PERIOD - (1 if upper else 0)
    for month in np.arange(np.datetime64(first), last + 1):
        timestamp = pd.Timestamp(month)
        if timestamp.month == 7 and timestamp.year != 2022:
            continue
        name = timestamp.strftime("%b-%Y")
        start, end = month.astype("datetime64[D]"), (month + 1).astype("datetime64[D]") - 1
        yield (name.upper() if upper else name), start, end, float(month.astype(np.int64))
        if timestamp.month == 6:
            yield f"ADJ-{timestamp.year}", end, end, float(month.astype(np.int64)) + 0.5


def write_general_ledger(path: Path, rng: np.random.Generator) -> int:
    rows = []
    for account_rank, (segments, first, level, upper) in enumerate(LEDGER_ACCOUNTS):
        for name, start, end, order in ledger_periods(first, upper):
            if name.startswith("ADJ"):
                amount = level * rng.uniform(0.1, 1.3)
            elif pd.Timestamp(start).month == 6:  # year-end accruals land in June
                amount = level * rng.uniform(6, 9)
            else:
                amount = level * rng.lognormal(0, 0.12)
            rows.append((segments[:4], -order, account_rank, segments, round(amount, 2), name, start, end))
    # One year-end adjustment reverses a whole year of an account, as in the real ledger.
    reversal = next(
        i for i, r in enumerate(rows) if r[3].startswith("1100.C.C00100.523201") and r[5] == "ADJ-2020"
    )
    rows[reversal] = (*rows[reversal][:4], -45_358_862.14, *rows[reversal][5:])
    family_rank = {"2070": 0, "1111": 1, "1100": 2}
    rows.sort(key=lambda r: (family_rank[r[0]], r[1], r[2]))
    header = [
        "Ledger Name", "Concatenated Segments", "Period Net Activity", "Accounting Period Name",
        "Accounting Period Start Date", "Accounting Period End Date",
    ]  # fmt: skip
    ledger = f"CITY OF {CITY_NAME.upper()}"
    return write_csv(
        path,
        header,
        ([ledger, r[3], plain_number(r[4]), r[5], midnight_text(r[6]), midnight_text(r[7])] for r in rows),
    )


BOSTON_UNITS = (  # (cabinet, department, programs) in the Boston adopted-budget layout
    ("Streets Cabinet", "Public Works Department", (
        "PWD Administration", "Street Maintenance", "Pothole Repair", "Sanitation",
    )),
    ("Streets Cabinet", "Transportation Department", (
        "Traffic Operations", "Street Lighting", "Parking Enforcement",
    )),
    ("Streets Cabinet", "Design Engineering", ("Engineering", "Sidewalk Program")),
    ("Environment, Energy & Open Space Cabinet", "Wastewater Department", (
        "Sewer Operations", "Odor Control",
    )),
    ("Environment, Energy & Open Space Cabinet", "Parks and Recreation", (
        "Parks Operations", "Athletic Fields",
    )),
    ("Public Safety Cabinet", "Police Department", (
        "Bureau of Field Services", "Bureau of Investigative Services", "Police Academy",
    )),
    ("Public Safety Cabinet", "Fire Department", ("Fire Suppression", "Fire Prevention", "Training")),
    ("Human Services Cabinet", "Youth & Family Development", (
        "YFD Centers", "Youth Employment and Opportunity Admin",
    )),
    ("Operations Cabinet", "311 Constituent Services", ("311 Call Center",)),
    ("Housing Cabinet", "Neighborhood Development", ("Code Enforcement", "Housing Stability")),
    ("Finance Cabinet", "Office of Finance", ("A&F", "Budget Management", "Procurement")),
    ("Mayor's Cabinet", "Mayor's Office", ("Mayor's Administration", "Press Office")),
)  # fmt: skip
BOSTON_CATEGORIES = (
    ("Personnel Services", 1_500_000), ("Contractual Services", 300_000), ("Supplies & Materials", 60_000),
    ("Current Charges & Obligations", 25_000), ("Equipment", 40_000), ("Other Expenses", 15_000),
)  # fmt: skip
BOSTON_MISSING_RATE = (0.19, 0.15, 0.14, 0.10)  # per year column, like the real file


def boston_amounts(rng: np.random.Generator, median: float) -> list[str]:
    fy22 = median * rng.lognormal(0, 0.5)
    fy23 = fy22 * rng.lognormal(0.04, 0.12)
    fy24 = round(fy23 * rng.lognormal(0.02, 0.08), 0 if rng.random() < 0.7 else 2)
    fy25 = round(fy24 * rng.lognormal(0.03, 0.06), 0 if rng.random() < 0.7 else 2)
    values = [round(fy22, 2), round(fy23, 2), fy24, fy25]
    return [
        "#Missing" if rng.random() < rate else plain_number(v)
        for v, rate in zip(values, BOSTON_MISSING_RATE, strict=True)
    ]


def write_boston_budget(path: Path, rng: np.random.Generator) -> int:
    rows = []
    for cabinet, department, programs in BOSTON_UNITS:
        for program in programs:
            scale = rng.lognormal(0, 0.6)
            for category, median in BOSTON_CATEGORIES:
                if category == "Personnel Services" or rng.random() < 0.75:
                    rows.append(
                        [cabinet, department, program, category, *boston_amounts(rng, median * scale)]
                    )
    for row in rng.choice(len(rows), size=2, replace=False):  # refunds exceeding spending
        rows[row][5] = plain_number(-float(rng.uniform(500, 20_000)))
    header = [
        "Cabinet", "Dept", "Program", "Expense Category", "FY22 Actual Expense", "FY23 Actual Expense",
        "FY24 Appropriation", "FY25 Budget",
    ]  # fmt: skip
    return write_csv(path, header, rows, newline="\r\n")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def write_boundaries(out_dir: Path, geo: Geography, rng: np.random.Generator) -> dict[str, int]:
    return {
        "boundaries/city_limits_demo.csv": write_city_limits(
            out_dir / "boundaries/city_limits_demo.csv", geo, rng
        ),
        "boundaries/council_districts_current_demo.csv": write_council_districts(
            out_dir / "boundaries/council_districts_current_demo.csv", geo
        ),
        "boundaries/council_districts_demo.geojson": write_council_districts_geojson(
            out_dir / "boundaries/council_districts_demo.geojson", geo, rng
        ),
        "boundaries/neighborhood_association_boundaries_demo.csv": write_neighborhoods(
            out_dir / "boundaries/neighborhood_association_boundaries_demo.csv", geo, rng
        ),
        "boundaries/zip_codes_demo.csv": write_zip_codes(out_dir / "boundaries/zip_codes_demo.csv", geo),
    }


def write_facilities(out_dir: Path, geo: Geography, rng: np.random.Generator) -> dict[str, int]:
    return {
        "facilities/fire_stations_demo.csv": write_fire_stations(
            out_dir / "facilities/fire_stations_demo.csv", geo, rng
        ),
        "facilities/yfd_centers_demo.csv": write_yfd_centers(
            out_dir / "facilities/yfd_centers_demo.csv", geo, rng
        ),
    }


def write_budgets(out_dir: Path, seed: int) -> dict[str, int]:
    writers = {
        "budget/operating_budget_demo.csv": write_operating_budget,
        "budget/operating_expenses_demo.csv": write_operating_expenses,
        "budget/capital_budget_demo.csv": write_capital_budget,
        "budget/general_ledger_activity_demo.csv": write_general_ledger,
        "budget/fy25-adopted-operating-budget_demo.csv": write_boston_budget,
    }
    return {name: write(out_dir / name, stream(seed, name)) for name, write in writers.items()}


def generate_demo_city(out_dir: Path, *, requests: int = 20_000, seed: int = 7) -> dict[str, int]:
    """Write the whole demo city under ``out_dir``; returns relative path -> data rows written."""
    out_dir = Path(out_dir)
    geo = build_geography(stream(seed, "geography"))
    written = write_boundaries(out_dir, geo, stream(seed, "boundaries"))
    written |= write_census(out_dir, geo, stream(seed, "census"))
    written |= write_facilities(out_dir, geo, stream(seed, "facilities"))
    written |= write_budgets(out_dir, seed)
    written |= write_requests(out_dir, geo, stream(seed, "requests"), requests)
    return written
