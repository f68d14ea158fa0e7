"""The seeded demo city: reproducible, in the real exports' formats, and geographically consistent."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
import shapely

from civicflow_assets.demo_city import (
    BOGUS_LOCATION,
    POVERTY_COLUMNS,
    RACE_COLUMNS,
    generate_demo_city,
    resample_requests,
)
from tests.shared_data import shared

REQUESTS = 3000
REQUEST_FILES = (
    "311/potholes_distressed_pavement_demo.csv",
    "311/sidewalks_with_department_demo.csv",
    "311/odor_complaints_demo.csv",
)
# Demo file -> the real export whose header it must carry.
REAL_COUNTERPARTS = {
    "311/potholes_distressed_pavement_demo.csv": "chattanooga/311/potholes_distressed_pavement_2x73-xesh.csv",
    "311/sidewalks_with_department_demo.csv": "chattanooga/311/sidewalks_with_department_pzwn-f2mv.csv",
    "311/odor_complaints_demo.csv": "chattanooga/311/sidewalks_with_department_pzwn-f2mv.csv",
    "boundaries/city_limits_demo.csv": "chattanooga/boundaries/city_limits_he9k-mwar.csv",
    "boundaries/council_districts_current_demo.csv": (
        "chattanooga/boundaries/council_districts_current_5t2x-jnde.csv"
    ),
    "boundaries/neighborhood_association_boundaries_demo.csv": (
        "chattanooga/boundaries/neighborhood_association_boundaries_dxzz-idjy.csv"
    ),
    "boundaries/zip_codes_demo.csv": "chattanooga/boundaries/zip_codes_kwzr-kyn5.csv",
    "census/tracts_2020_demo.csv": "chattanooga/census/tracts_2020_hamilton_smb5-msar.csv",
    "census/tracts_2010_demo.csv": "chattanooga/census/tracts_2010_hamilton_cn8m-xnfj.csv",
    "census/acs2017_median_household_income_demo.csv": (
        "chattanooga/census/acs2017_median_household_income_7gqk-pvww.csv"
    ),
    "census/acs2017_occupancy_demo.csv": "chattanooga/census/acs2017_occupancy_vaxm-5kb2.csv",
    "census/acs2018_population_demo.csv": "chattanooga/census/acs2018_population_b8kj-tfr6.csv",
    "facilities/fire_stations_demo.csv": "chattanooga/facilities/fire_stations_duee-pv6k.csv",
    "facilities/yfd_centers_demo.csv": "chattanooga/facilities/yfd_centers_uuvh-i2z5.csv",
    "budget/operating_budget_demo.csv": "chattanooga/budget/operating_budget_fy2015-2021_4xcm-j4rx.csv",
    "budget/operating_expenses_demo.csv": "chattanooga/budget/operating_expenses_fy2024-2025_4gk4-yecq.csv",
    "budget/capital_budget_demo.csv": "chattanooga/budget/capital_budget_fy2016-2025_mnmi-tnpy.csv",
    "budget/general_ledger_activity_demo.csv": "chattanooga/budget/general_ledger_activity_5576-p28s.csv",
    "budget/fy25-adopted-operating-budget_demo.csv": "boston/budget/fy25-adopted-operating-budget.csv",
}
# The two wide census tables are written with a chosen subset of the real columns.
REAL_SUBSETS = {
    "census/acs2017_poverty_S1701_demo.csv": (
        "chattanooga/census/acs2017_poverty_S1701_ufw3-p78c.csv",
        ["Id", "Id2", "tract ID", "Geography", "High Poverty Area", *POVERTY_COLUMNS],
    ),
    "census/acs2017_race_ethnicity_demo.csv": (
        "chattanooga/census/acs2017_race_ethnicity_3jq9-a5da.csv",
        ["Id", "Id2", "tract ID", "Geography", *RACE_COLUMNS, "geom"],
    ),
}


def header_of(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle))


def read_text_csv(path: Path) -> pd.DataFrame:
    csv.field_size_limit(sys.maxsize)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("demo")
    return folder, generate_demo_city(folder, requests=REQUESTS)


def test_same_arguments_give_byte_identical_files(demo, tmp_path):
    folder, _ = demo
    generate_demo_city(tmp_path, requests=REQUESTS)
    assert digests(tmp_path) == digests(folder)


def test_a_different_seed_gives_a_different_city(demo, tmp_path):
    folder, _ = demo
    generate_demo_city(tmp_path, requests=REQUESTS, seed=8)
    name = "boundaries/council_districts_current_demo.csv"
    assert (tmp_path / name).read_bytes() != (folder / name).read_bytes()


def test_reported_counts_match_the_files(demo):
    folder, counts = demo
    assert sorted(counts) == sorted(digests(folder))
    for name, rows in counts.items():
        if name.endswith(".geojson"):
            assert len(json.loads((folder / name).read_text())["features"]) == rows
        else:
            assert len(read_text_csv(folder / name)) == rows, name
    assert sum(counts[name] for name in REQUEST_FILES) == REQUESTS


@pytest.mark.parametrize("name", sorted(REAL_COUNTERPARTS))
def test_headers_equal_the_real_exports(demo, name):
    folder, _ = demo
    assert header_of(folder / name) == header_of(shared("data", *REAL_COUNTERPARTS[name].split("/")))


@pytest.mark.parametrize("name", sorted(REAL_SUBSETS))
def test_wide_census_tables_keep_a_subset_of_the_real_columns(demo, name):
    folder, _ = demo
    real_name, chosen = REAL_SUBSETS[name]
    real = header_of(shared("data", *real_name.split("/")))
    assert header_of(folder / name) == chosen
    assert set(chosen) <= set(real)


def test_geojson_has_the_real_property_names(demo):
    folder, _ = demo
    real = json.loads(
        shared("data", "chattanooga", "boundaries", "council_districts_geochatt.geojson").read_text()
    )
    ours = json.loads((folder / "boundaries/council_districts_demo.geojson").read_text())
    assert ours["crs"] == real["crs"]
    assert {f["geometry"]["type"] for f in ours["features"]} == {"MultiPolygon"}
    assert {tuple(f["properties"]) for f in ours["features"]} == {tuple(real["features"][0]["properties"])}


def city_limits(folder: Path) -> shapely.Geometry:
    return shapely.from_wkt(read_text_csv(folder / "boundaries/city_limits_demo.csv")["multipolygon"][0])


def test_request_points_fall_inside_the_city(demo):
    folder, _ = demo
    # Coordinates are written with 9 decimals, so allow that much rounding at the boundary.
    city = city_limits(folder).buffer(1e-8)
    for name in REQUEST_FILES:
        frame = read_text_csv(folder / name)
        locations = frame[frame.columns[-1]]
        placed = locations[(locations != "") & (locations != BOGUS_LOCATION)]
        points = shapely.from_wkt(placed.to_numpy())
        assert len(points) > 0.9 * len(frame)
        assert shapely.contains(city, points).all(), name


def test_request_keys_are_unique_and_increase_with_time(demo):
    folder, _ = demo
    frames = [read_text_csv(folder / name) for name in REQUEST_FILES]
    keys = pd.concat([frame[frame.columns[0]] for frame in frames])
    assert keys.is_unique
    current = pd.concat(
        frame[~frame[frame.columns[0]].str.contains("-")].iloc[:, :2].set_axis(["key", "created"], axis=1)
        for frame in frames
    )
    current = current.assign(
        key=current["key"].astype(int),
        created=pd.to_datetime(current["created"], format="%m/%d/%Y %I:%M:%S %p"),
    )
    assert current.sort_values("key")["created"].is_monotonic_increasing


def test_districts_are_nine_and_do_not_overlap(demo):
    folder, _ = demo
    frame = read_text_csv(folder / "boundaries/council_districts_current_demo.csv")
    districts = shapely.from_wkt(frame["the_geom"].to_numpy())
    assert sorted(frame["citydst"].astype(int)) == list(range(1, 10))
    assert all(d.geom_type == "MultiPolygon" and d.is_valid and d.area > 0 for d in districts)
    for a, b in combinations(districts, 2):
        assert shapely.intersection(a, b).area < 1e-9
    city = city_limits(folder)
    assert shapely.symmetric_difference(shapely.union_all(districts), city).area < 1e-4 * city.area


def test_tracts_2020_are_covered_by_tracts_2010(demo):
    folder, _ = demo
    tracts_2010 = read_text_csv(folder / "census/tracts_2010_demo.csv")
    tracts_2020 = read_text_csv(folder / "census/tracts_2020_demo.csv")
    county_2010 = shapely.union_all(shapely.from_wkt(tracts_2010["geom"].to_numpy()))
    geoms_2020 = shapely.from_wkt(tracts_2020["geometry"].to_numpy())
    assert (shapely.area(shapely.difference(geoms_2020, county_2010)) < 1e-9).all()
    assert abs(shapely.union_all(geoms_2020).area - county_2010.area) < 1e-6 * county_2010.area
    codes_2010, codes_2020 = set(tracts_2010["Tract ID"]), set(tracts_2020["TRACTCE20"])
    assert 0 < len(codes_2010 - codes_2020) < len(codes_2020 - codes_2010) < 0.2 * len(codes_2010)


def test_census_ids_are_unique_and_well_formed(demo):
    folder, _ = demo
    tracts_2020 = read_text_csv(folder / "census/tracts_2020_demo.csv")
    assert tracts_2020["GEOID20"].is_unique
    assert tracts_2020["GEOID20"].str.fullmatch(r"47\d{9}").all()
    for name, column in [
        ("census/tracts_2010_demo.csv", "Tract ID"),
        ("census/acs2017_poverty_S1701_demo.csv", "tract ID"),
        ("census/acs2017_median_household_income_demo.csv", "TRACT_ID"),
    ]:
        codes = read_text_csv(folder / name)[column]
        assert codes.is_unique and codes.str.fullmatch(r"\d{6}").all(), name


def test_other_ids_are_unique(demo):
    folder, _ = demo
    for name, column in [
        ("boundaries/neighborhood_association_boundaries_demo.csv", "name"),
        ("boundaries/zip_codes_demo.csv", "Zip Code"),
        ("facilities/fire_stations_demo.csv", "OBJECTID"),
        ("facilities/yfd_centers_demo.csv", "YFD Facility Name"),
    ]:
        assert read_text_csv(folder / name)[column].is_unique, name


def test_resample_requests_gives_new_unique_keys_to_source_rows(demo, tmp_path):
    folder, _ = demo
    source = folder / "311/potholes_distressed_pavement_demo.csv"
    out = tmp_path / "resampled.csv"
    assert resample_requests(source, out, 5000, seed=3) == 5000
    original, resampled = read_text_csv(source), read_text_csv(out)
    key = original.columns[0]
    assert list(resampled.columns) == list(original.columns)
    assert len(resampled) == 5000 and resampled[key].is_unique
    assert not set(resampled[key]) & set(original[key])
    # Keys keep their system's format: legacy "YY-NNNNNNNN" or a plain integer.
    assert resampled[key].str.fullmatch(r"\d{2}-\d{8}|\d+").all()
    others = list(original.columns[1:])
    assert set(resampled[others].itertuples(index=False)) <= set(original[others].itertuples(index=False))
    resample_requests(source, tmp_path / "again.csv", 5000, seed=3)
    assert (tmp_path / "again.csv").read_bytes() == out.read_bytes()
