"""Landing every real Chattanooga and Boston extract: exact counts, the known quirks, named quarantine reasons."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from civicflow_assets.landing import LoadResult, land_files
from civicflow_assets.settings import PACKAGE_DIR
from civicflow_assets.sources.mapping import load_mappings
from tests.conftest import scalar
from tests.shared_data import shared

MAPPINGS = load_mappings([PACKAGE_DIR / "sources" / "mappings"])
FILE_MAPPINGS = {n: m for n, m in MAPPINGS.items() if m.format != "records"}

# Rows per real file, as PROVENANCE.md lists them (and as csv.reader counts them below).
REAL_ROWS = {
    "potholes_distressed_pavement_2x73-xesh.csv": 34_335,
    "sidewalks_with_department_pzwn-f2mv.csv": 4_505,
    "odor_complaints_nejd-62ty.csv": 1_534,
    "tracts_2020_hamilton_smb5-msar.csv": 87,
    "tracts_2010_hamilton_cn8m-xnfj.csv": 82,
    "acs2017_median_household_income_7gqk-pvww.csv": 82,
    "acs2017_poverty_S1701_ufw3-p78c.csv": 82,
    "acs2017_race_ethnicity_3jq9-a5da.csv": 82,
    "acs2017_occupancy_vaxm-5kb2.csv": 82,
    "acs2018_population_b8kj-tfr6.csv": 82,
    "operating_budget_fy2015-2021_4xcm-j4rx.csv": 40_950,
    "operating_expenses_fy2024-2025_4gk4-yecq.csv": 16_924,
    "capital_budget_fy2016-2025_mnmi-tnpy.csv": 1_262,
    "general_ledger_activity_5576-p28s.csv": 346,
    "council_districts_current_5t2x-jnde.csv": 9,
    "council_districts_geochatt.geojson": 9,
    "neighborhood_association_boundaries_dxzz-idjy.csv": 109,
    "zip_codes_kwzr-kyn5.csv": 22,
    "city_limits_he9k-mwar.csv": 1,
    "fire_stations_duee-pv6k.csv": 20,
    "yfd_centers_uuvh-i2z5.csv": 21,
    "fy25-adopted-operating-budget.csv": 943,
}


def _csv_rows(path: Path) -> int:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


@pytest.fixture(scope="module")
def landed(warehouse_url: str) -> dict[str, LoadResult]:
    import psycopg2

    data_dirs = [shared("data", "chattanooga"), shared("data", "boston")]
    conn = psycopg2.connect(warehouse_url)
    results = {name: land_files(conn, m, m.find_files(data_dirs)) for name, m in FILE_MAPPINGS.items()}
    conn.close()
    return results


def test_every_real_file_is_read_whole_and_adds_up(landed: dict[str, LoadResult]) -> None:
    per_file = {Path(f.source_file).name: f for r in landed.values() for f in r.files}
    assert set(per_file) == set(REAL_ROWS)
    for name, stats in per_file.items():
        assert stats.read == REAL_ROWS[name], name
        if not name.endswith(".geojson"):
            assert stats.read == _csv_rows(Path(stats.source_file)), name
        assert stats.loaded + stats.quarantined == stats.read


def test_the_only_quarantined_real_row_is_the_duplicate_neighborhood(conn, landed) -> None:
    assert sum(r.quarantined for r in landed.values()) == 1
    with conn.cursor() as cur:
        cur.execute("select _source, _record, reasons, raw_row ->> 'name' from raw._quarantine"
                    " where _source = any(%s)", (list(FILE_MAPPINGS),))
        ((source, record, reasons, name),) = cur.fetchall()
    assert (source, name) == ("neighborhoods", "Missionary Ridge Neighborhood Association")
    assert reasons == [f"duplicate key {name}: a later record of this extract supersedes it"]
    assert record < 109


def test_both_311_schemas_land_in_one_table(conn, landed) -> None:
    chattanooga = "from raw.service_requests where _source like 'chattanooga_311_%'"
    assert scalar(conn, f"select count(*) {chattanooga}") == 34_335 + 4_505 + 1_534
    assert scalar(conn, f"select count(distinct _source) {chattanooga}") == 2
    # Only the Title-Case export has a department; 395 of its sidewalk rows leave it blank.
    assert scalar(conn, f"select count(*) {chattanooga} and department is null"
                        " and _source_file like '%sidewalks%'") == 395
    assert scalar(conn, f"select count(*) {chattanooga}"
                        " and _source = 'chattanooga_311_potholes' and department is not null") == 0


def test_311_quirks_load_rather_than_vanish(conn, landed) -> None:
    potholes = "from raw.service_requests where _source = 'chattanooga_311_potholes'"
    # Local wall-clock times read as America/New_York.
    assert scalar(conn, "select to_char(created_at at time zone 'America/New_York', 'YYYY-MM-DD HH24:MI:SS')"
                        f" {potholes} and service_request_id = '16005901'") == "2024-09-24 20:04:06"
    assert scalar(conn, f"select created_at::text {potholes} and service_request_id = '16005901'"
                  ).endswith("00:04:06+00")  # the session here is UTC: EDT is UTC-4
    assert scalar(conn, f"select count(*) {potholes} and st_x(location) between -92.6 and -92.4") == 986
    assert scalar(conn, f"select count(*) {potholes} and location is null") == 2_621
    assert scalar(conn, f"select count(*) {potholes} and closed_at < created_at") == 14
    assert scalar(conn, f"select count(*) {potholes} and request_type = 'Pothole'") == 14_579
    assert scalar(conn, f"select count(*) {potholes} and closed_at is null") == 100
    assert scalar(conn, f"select count(*) {potholes} and status_code is null") == 3


def test_census_tracts_join_acs_rows(conn, landed) -> None:
    assert scalar(conn, "select count(*) from raw.acs_population p join raw.census_tracts_2010 t"
                        " using (tract_code)") == 82
    assert scalar(conn, "select count(*) from raw.census_tracts_2020 t20 join raw.census_tracts_2010 t10"
                        " on t20.tract_code = t10.tract_code") == 77
    assert scalar(conn, "select count(*) from raw.acs_median_household_income"
                        " where median_household_income is null") == 2
    assert scalar(conn, "select string_agg(tract_code, ',' order by tract_code)"
                        " from raw.acs_median_household_income where median_household_income is null"
                        ) == "980100,980200"
    assert scalar(conn, "select count(*) from raw.census_tracts_2020 where not st_isvalid(geom)"
                        " or st_srid(geom) <> 4326") == 0


def test_acs_annotations_become_nulls_with_a_reason(conn, landed) -> None:
    path = shared("data", "chattanooga", "census", "acs2017_poverty_S1701_ufw3-p78c.csv")
    mapped = [f.column for f in MAPPINGS["acs2017_poverty"].fields if f.type == "numeric"]
    with path.open(newline="") as handle:
        expected = sum(row[c] == "(X)" for row in csv.DictReader(handle) for c in mapped)
    nulled = scalar(conn, "select count(*) from raw.acs_poverty, jsonb_each_text(_nulled) e"
                          " where e.value like '''(X)''%'")
    assert nulled == expected


def test_boston_missing_markers_are_nulls_with_a_reason(conn, landed) -> None:
    path = shared("data", "boston", "budget", "fy25-adopted-operating-budget.csv")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    for field, column in [("fy22_actual", "FY22 Actual Expense"), ("fy25_budget", "FY25 Budget")]:
        expected = sum(r[column].strip() == "#Missing" for r in rows)
        assert 94 <= expected <= 183
        assert scalar(conn, f"select count(*) from raw.budget_actuals where {field} is null"
                            f" and _nulled ->> '{field}' like '''#Missing''%'") == expected
    assert scalar(conn, "select count(*) from raw.budget_actuals where fy23_actual < 0"
                        " or fy22_actual < 0 or fy24_appropriation < 0 or fy25_budget < 0") == 2


def test_budget_quirks(conn, landed) -> None:
    chattanooga = shared("data", "chattanooga", "budget", "operating_budget_fy2015-2021_4xcm-j4rx.csv")
    with chattanooga.open(newline="") as handle:
        fire_2021 = sum(float(r["Approved Amount"] or 0) for r in csv.DictReader(handle)
                        if r["Fiscal Year"] == "2021" and r["Department"] == "Fire")
    assert float(scalar(conn, "select sum(approved_amount) from raw.operating_budget"
                              " where fiscal_year = 2021 and department = 'Fire'")) == pytest.approx(fire_2021)
    assert scalar(conn, "select count(*) from raw.operating_budget where fiscal_year = 2024"
                        " and approved_amount is not null") == 0
    assert scalar(conn, "select count(*) from raw.capital_budget where actuals_to_date is not null") == 0
    assert scalar(conn, "select count(distinct period_name) from raw.general_ledger"
                        " where period_name like 'ADJ-%'") > 0


def test_boundaries_are_4326_with_gist_indexes(conn, landed) -> None:
    for table in ("council_districts", "council_districts_geojson", "neighborhoods", "zip_codes",
                  "city_limits", "fire_stations", "youth_centers", "census_tracts_2020", "service_requests"):
        column = "location" if table == "service_requests" else "geom"
        assert scalar(conn, f"select count(*) from raw.{table} where st_srid({column}) <> 4326") == 0
        assert scalar(conn, "select count(*) from pg_indexes where schemaname = 'raw' and tablename = %s"
                            " and indexdef like '%%USING gist%%'", table) >= 1, table
    # The GeoJSON is a newer redistricting: 9 districts too, other representatives in districts 3-6 and 9.
    assert scalar(conn, "select string_agg(c.district, ',' order by c.district) from raw.council_districts c"
                        " join raw.council_districts_geojson g on g.district = c.district"
                        " where g.representative <> c.representative") == "3,4,5,6,9"


def test_second_load_of_the_same_extracts_changes_nothing(warehouse_url, conn, landed) -> None:
    import psycopg2

    before = scalar(conn, "select max(_loaded_at)::text || count(*) from raw.service_requests")
    second = psycopg2.connect(warehouse_url)
    mapping = MAPPINGS["chattanooga_311_requests"]
    result = land_files(second, mapping, mapping.find_files([shared("data", "chattanooga")]))
    second.close()
    assert (result.inserted, result.updated, result.deleted, result.unchanged) == (0, 0, 0, 6_039)
    assert scalar(conn, "select max(_loaded_at)::text || count(*) from raw.service_requests") == before
