"""The intermediate models and marts on the real Chattanooga and Boston data, checked against the same figures
computed independently in Python from the CSV files (csv + shapely + pyproj, no SQL), plus the spatial join's
equivalence with a plain ST_Contains join, the points outside the city, and the analyst role."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.errors
import pytest

from civicflow_assets.landing import land_files, prepare_target
from civicflow_assets.settings import DBT_PROJECT_DIR, PACKAGE_DIR
from civicflow_assets.sources.mapping import load_mappings
from tests.conftest import scalar
from tests.shared_data import shared

MAPPINGS = load_mappings([PACKAGE_DIR / "sources" / "mappings"])
DBT = str(Path(sys.executable).with_name("dbt"))
# Only this project's layers: another team's models (publish) need assets these tests do not materialize.
DBT_SELECT = ["--select", "+path:models/marts", "--indirect-selection", "cautious"]
NEW_YORK = ZoneInfo("America/New_York")
MARTS = ("fct_service_requests", "service_levels", "service_levels_by_tract", "budget_variance",
         "demographic_equity", "service_coverage")

csv.field_size_limit(sys.maxsize)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared with test_marts_incremental.py
# ---------------------------------------------------------------------------------------------------------------

def dbt_env(url: str) -> dict[str, str]:
    """The environment dbt's profiles.yml reads, for this database (os.environ is left alone)."""
    parsed = urlparse(url)
    return {
        **os.environ,
        "CIVICFLOW_PG_HOST": parsed.hostname or "127.0.0.1",
        "CIVICFLOW_PG_PORT": str(parsed.port or 5432),
        "CIVICFLOW_PG_USER": unquote(parsed.username or ""),
        "CIVICFLOW_PG_PASSWORD": unquote(parsed.password or ""),
        "CIVICFLOW_PG_DATABASE": parsed.path.lstrip("/"),
    }


def run_dbt(url: str, work_dir: Path, *args: str) -> dict:
    """dbt as a subprocess, with its own target and log folders (other sessions run dbt on the same project)."""
    command = [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
               "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")]
    result = subprocess.run(command, env=dbt_env(url), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
    return json.loads((work_dir / "target" / "run_results.json").read_text())


def land_real_data(url: str) -> None:
    """Every real file mapping landed; the API-fed raw tables created empty, as before their first load."""
    data_dirs = [shared("data", "chattanooga"), shared("data", "boston")]
    conn = psycopg2.connect(url)
    try:
        # Tests before these share the session's database: drop the rows their own sources put in raw tables
        # (another city's CSV, recorded Chicago Open311 requests), so the marts hold only the real files below.
        with conn.cursor() as cur:
            cur.execute("select to_regclass('raw.service_requests'), to_regclass('raw.open311_requests')")
            service_requests, open311 = cur.fetchone()
            if service_requests:
                cur.execute("delete from raw.service_requests where _source <> all(%s)", (list(MAPPINGS),))
            if open311:
                cur.execute("truncate raw.open311_requests")
        conn.commit()
        for mapping in MAPPINGS.values():
            if mapping.format == "records":
                prepare_target(conn, mapping)
            else:
                land_files(conn, mapping, mapping.find_files(data_dirs))
    finally:
        conn.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def local_time(text: str) -> datetime:
    """A "MM/DD/YYYY hh:mm:ss AM" wall-clock time in New York, as PostgreSQL reads it: an ambiguous time (the
    repeated hour in November) is standard time, a time skipped in March takes the offset before the change."""
    naive = datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")
    first, second = (naive.replace(tzinfo=NEW_YORK, fold=fold) for fold in (0, 1))
    ambiguous = first.utcoffset() != second.utcoffset() and all(
        t.astimezone(UTC).astimezone(NEW_YORK).replace(tzinfo=None) == naive for t in (first, second))
    return second if ambiguous else first


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    land_real_data(warehouse_url)
    return run_dbt(warehouse_url, tmp_path_factory.mktemp("dbt_marts_real"), "build", *DBT_SELECT)


@pytest.fixture(scope="module")
def district_potholes() -> dict[str | None, list[float | None]]:
    """Hours to close of every pothole request by council district, from the CSVs alone: the point-in-polygon
    with shapely over the districts' WKT (the lowest district where two overlap), null without a point or
    outside every district; hours null while open or where completion precedes creation."""
    import shapely

    districts = read_csv(shared("data", "chattanooga", "boundaries", "council_districts_current_5t2x-jnde.csv"))
    polygons = [(row["citydst"], shapely.from_wkt(row["the_geom"])) for row in districts]
    for _, polygon in polygons:
        shapely.prepare(polygon)
    rows = [r for r in read_csv(shared("data", "chattanooga", "311", "potholes_distressed_pavement_2x73-xesh.csv"))
            if r["request_type"] in ("Pothole", "Potholes")]
    points = shapely.from_wkt([r["loc"] or None for r in rows])
    inside = {name: shapely.contains(polygon, points) for name, polygon in polygons}
    by_district: dict[str | None, list[float | None]] = defaultdict(list)
    for i, row in enumerate(rows):
        district = min((name for name, _ in polygons if inside[name][i]), default=None)
        created = local_time(row["created_date"])
        completed = local_time(row["completed_at"]) if row["completed_at"] else None
        hours = hours_between(created, completed) if completed and completed >= created else None
        by_district[district].append(hours)
    return by_district


# ---------------------------------------------------------------------------------------------------------------
# Marts against Python
# ---------------------------------------------------------------------------------------------------------------

def test_every_model_and_dbt_test_passed(built: dict) -> None:
    statuses = Counter(r["status"] for r in built["results"])
    assert set(statuses) <= {"success", "pass"}, statuses
    names = {r["unique_id"].split(".")[-1] for r in built["results"]}
    assert set(MARTS) <= names
    assert sum(1 for r in built["results"] if r["unique_id"].startswith("test.")) > 150


def test_potholes_per_council_district_match_python(conn, built, district_potholes) -> None:
    with conn.cursor() as cur:
        cur.execute(
            'select "CouncilDistrict", count(*), percentile_cont(0.5) within group (order by "HoursToClose")'
            ' from marts.fct_service_requests'
            " where \"SourceSystem\" = 'chattanooga_311_potholes' and \"RequestType\" = 'Potholes'"
            ' group by 1')
        mart = {district: (count, median) for district, count, median in cur.fetchall()}
    expected = {
        district: (len(hours), statistics.median([h for h in hours if h is not None]))
        for district, hours in district_potholes.items()
    }
    assert set(mart) == set(expected) == {*map(str, range(1, 10)), None}
    for district, (count, median) in expected.items():
        assert mart[district][0] == count, district
        assert mart[district][1] == pytest.approx(median, rel=1e-12, abs=1e-9), district
    assert sum(c for c, _ in mart.values()) == 34_335 - 2_166  # every pothole; the rest is distressed pavement


def test_a_district_month_of_service_levels_matches_python(conn, built) -> None:
    """Potholes in district 7, May 2023: opened, closed in the month, median and p90 hours, on time (SLA 168 h),
    and the open backlog at the month's end, from the CSV (districts by shapely, as above)."""
    import shapely

    districts = read_csv(shared("data", "chattanooga", "boundaries", "council_districts_current_5t2x-jnde.csv"))
    district_7 = shapely.from_wkt(next(r["the_geom"] for r in districts if r["citydst"] == "7"))
    others = [shapely.from_wkt(r["the_geom"]) for r in districts if r["citydst"] < "7"]
    month, month_end = date(2023, 5, 1), datetime(2023, 6, 1, tzinfo=NEW_YORK)
    opened = backlog = 0
    closed_hours: list[float] = []
    for row in read_csv(shared("data", "chattanooga", "311", "potholes_distressed_pavement_2x73-xesh.csv")):
        if row["request_type"] not in ("Pothole", "Potholes") or not row["loc"]:
            continue
        point = shapely.from_wkt(row["loc"])
        if not district_7.contains(point) or any(o.contains(point) for o in others):
            continue
        created = local_time(row["created_date"])
        completed = local_time(row["completed_at"]) if row["completed_at"] else None
        left_backlog = (max(completed, created) if completed
                        else created if row["status_code"] in ("CLOSED", "O-CLOSED") else None)
        if (created.year, created.month) == (month.year, month.month):
            opened += 1
        if left_backlog and (left_backlog.year, left_backlog.month) == (month.year, month.month):
            closed_hours.append(hours_between(created, completed) if completed and completed >= created else None)
        if created < month_end and not (left_backlog and left_backlog < month_end):
            backlog += 1
    valid = [h for h in closed_hours if h is not None]
    with conn.cursor() as cur:
        cur.execute(
            'select "RequestsOpened", "RequestsClosed", "MedianHoursToClose", "P90HoursToClose", "OnTimePct",'
            ' "OpenBacklogAtMonthEnd" from marts.service_levels'
            " where \"RequestType\" = 'Potholes' and \"CouncilDistrict\" = '7' and \"Month\" = %s", (month,))
        row = cur.fetchone()
    assert opened > 20
    assert row[:2] == (opened, len(closed_hours))
    assert row[2] == pytest.approx(statistics.median(valid), rel=1e-12)
    assert row[3] == pytest.approx(percentile_cont(valid, 0.9), rel=1e-12)
    assert float(row[4]) == pytest.approx(100 * sum(h <= 168 for h in valid) / len(valid), rel=1e-12)
    assert row[5] == backlog


def test_department_budgets_match_the_csv_files(conn, built) -> None:
    operating = read_csv(shared("data", "chattanooga", "budget", "operating_budget_fy2015-2021_4xcm-j4rx.csv"))

    def budgeted(department: str, year: int) -> Decimal:
        # Amended where given (FY2021), else approved, else recommended; per line, as the mart documents.
        return sum((Decimal(r["amended"] or r["Approved Amount"] or r["Recommended Amount"] or "0")
                    for r in operating if r["Department"] == department and r["Fiscal Year"] == str(year)),
                   Decimal(0))

    def mart(department: str, year: int, column: str, city: str = "Chattanooga") -> Decimal:
        return scalar(conn, f'select sum("{column}") from marts.budget_variance where "City" = %s'
                            ' and "Department" = %s and "FiscalYear" = %s', city, department, year)

    assert mart("Fire", 2019, "Budgeted") == budgeted("Fire", 2019)
    assert mart("Fire", 2019, "ApprovedBudget") == sum(
        Decimal(r["Approved Amount"]) for r in operating
        if r["Department"] == "Fire" and r["Fiscal Year"] == "2019" and r["Approved Amount"])
    assert mart("Police", 2021, "Budgeted") == budgeted("Police", 2021)  # the one year with amendments
    # A renamed department: "Youth & Family" in FY2019-2021 is "Youth & Family Development" (seed).
    assert mart("Youth & Family Development", 2020, "Budgeted") == budgeted("Youth & Family", 2020) > 0
    assert mart("Youth & Family", 2020, "Budgeted") is None

    boston = read_csv(shared("data", "boston", "budget", "fy25-adopted-operating-budget.csv"))
    fire_fy22 = sum((Decimal(r["FY22 Actual Expense"]) for r in boston
                     if r["Dept"] == "Fire Department" and r["FY22 Actual Expense"].strip() != "#Missing"), Decimal(0))
    assert mart("Fire Department", 2022, "Actual", "Boston") == fire_fy22
    fire_fy25 = sum((Decimal(r["FY25 Budget"]) for r in boston
                     if r["Dept"] == "Fire Department" and r["FY25 Budget"].strip() != "#Missing"), Decimal(0))
    assert mart("Fire Department", 2025, "Budgeted", "Boston") == fire_fy25
    assert mart("Fire Department", 2023, "ActualYoYChange", "Boston") == mart(
        "Fire Department", 2023, "Actual", "Boston") - fire_fy22


def test_cost_per_request_divides_the_owners_budget_by_its_requests(conn, built) -> None:
    requests = scalar(conn, 'select count(*) from marts.fct_service_requests where "OwningDepartment" ='
                            " 'Public Works' and \"City\" = 'Chattanooga' and \"FiscalYear\" = 2019")
    row = scalar(conn, 'select array["Budgeted", "ServiceRequests", "CostPerServiceRequest"]'
                       " from marts.budget_variance where \"City\" = 'Chattanooga' and \"Department\" ="
                       " 'Public Works' and \"Fund\" = 'General Fund' and \"FiscalYear\" = 2019")
    assert row[1] == requests > 1000
    assert row[2] == round(row[0] / requests, 2)


def _tract_population(geoid_2020: str) -> float:
    """Population of a 2020 tract by area weighting from the 2010 tracts, with shapely and pyproj (EPSG:32616)."""
    import pyproj
    import shapely
    from shapely.ops import transform

    to_utm = pyproj.Transformer.from_crs(4326, 32616, always_xy=True).transform
    tracts_2020 = read_csv(shared("data", "chattanooga", "census", "tracts_2020_hamilton_smb5-msar.csv"))
    target = transform(to_utm, shapely.from_wkt(next(r["geometry"] for r in tracts_2020
                                                       if r["GEOID20"] == geoid_2020)))
    tracts_2010 = read_csv(shared("data", "chattanooga", "census", "tracts_2010_hamilton_cn8m-xnfj.csv"))
    population = {r["tract"].zfill(6): float(r["population"]) for r in read_csv(
        shared("data", "chattanooga", "census", "acs2018_population_b8kj-tfr6.csv")) if r["population"]}
    total = 0.0
    for row in tracts_2010:
        tract = transform(to_utm, shapely.from_wkt(row["geom"]))
        overlap = tract.intersection(target).area
        if overlap > 0 and row["Tract ID"].zfill(6) in population:
            total += population[row["Tract ID"].zfill(6)] * overlap / tract.area
    return total


@pytest.mark.parametrize("geoid", ["47065000400", "47065010431"])  # unchanged since 2010; split from 104.03
def test_a_tracts_population_matches_python(conn, built, geoid) -> None:
    expected = _tract_population(geoid)
    assert expected > 1000
    assert scalar(conn, 'select "Population" from marts.demographic_equity where "TractGeoid" = %s',
                  geoid) == round(expected)
    assert scalar(conn, "select population from intermediate.int_tracts__acs_2020 where tract_geoid = %s",
                  geoid) == pytest.approx(expected, rel=1e-9)


def test_allocation_keeps_the_county_population(conn, built) -> None:
    allocated = scalar(conn, "select sum(population) from intermediate.int_tracts__acs_2020")
    published = scalar(conn, "select sum(population) from raw.acs_population")
    assert 0.995 * float(published) < allocated <= float(published)


def test_equity_quintiles_and_gap(conn, built) -> None:
    with conn.cursor() as cur:
        cur.execute('select "IncomeQuintile", count(*), min("MedianHouseholdIncome"), max("MedianHouseholdIncome")'
                    ' from marts.demographic_equity where "IncomeQuintile" is not null group by 1 order by 1')
        quintiles = cur.fetchall()
    assert [q for q, *_ in quintiles] == [1, 2, 3, 4, 5]
    assert all(quintiles[i][3] <= quintiles[i + 1][2] for i in range(4))
    gaps = scalar(conn, 'select array_agg(distinct "EquityGapIndex") from marts.demographic_equity')
    assert len(gaps) == 1 and gaps[0] > 0
    assert scalar(conn, 'select sum("ServiceRequests") from marts.demographic_equity') == scalar(
        conn, 'select count("TractGeoid") from marts.fct_service_requests')


def test_coverage_distances_match_python(conn, built) -> None:
    """Nearest fire station of one tract: geodesic distances (pyproj.Geod on WGS84) from the mart's centre."""
    import pyproj

    geod = pyproj.Geod(ellps="WGS84")
    with conn.cursor() as cur:
        cur.execute('select st_x("PopulationCentre"), st_y("PopulationCentre"), "NearestFireStation",'
                    ' "NearestFireStationMetres" from marts.service_coverage where "TractGeoid" = %s',
                    ("47065012300",))
        lon, lat, name, metres = cur.fetchone()
    stations = read_csv(shared("data", "chattanooga", "facilities", "fire_stations_duee-pv6k.csv"))
    distances = []
    for row in stations:
        x, y = row["the_geom"].removeprefix("POINT (").rstrip(")").split()
        distances.append((geod.inv(lon, lat, float(x), float(y))[2], row["NAME"]))
    best, best_name = min(distances)
    assert name == best_name
    assert float(metres) == pytest.approx(best, abs=0.1)


# ---------------------------------------------------------------------------------------------------------------
# Spatial assignment
# ---------------------------------------------------------------------------------------------------------------

# The plain join: ST_Contains of the requests as landed against the whole boundaries as landed (raw tables, both
# GiST-indexed), the same tie-breaks as the model (lowest district or tract, smallest then first neighborhood).
PLAIN_JOIN = """
with districts as (
    select r._source || ':' || r.service_request_id as request_id, min(d.district) as council_district,
           count(*) as containing
    from raw.service_requests r join raw.council_districts d on st_contains(d.geom, r.location) group by 1
),
tracts as (
    select r._source || ':' || r.service_request_id as request_id, min(t.geoid) as tract_geoid
    from raw.service_requests r join raw.census_tracts_2020 t on st_contains(t.geom, r.location) group by 1
),
neighborhoods as (
    select distinct on (1) r._source || ':' || r.service_request_id as request_id, n.name as neighborhood,
           count(*) over (partition by r._source, r.service_request_id) as containing
    from raw.service_requests r join raw.neighborhoods n on st_contains(n.geom, r.location)
    order by 1, st_area(n.geom::geography), n.name
),
city as (
    select distinct r._source || ':' || r.service_request_id as request_id
    from raw.service_requests r join raw.city_limits c on st_contains(c.geom, r.location)
)
select r._source || ':' || r.service_request_id as request_id, d.council_district, t.tract_geoid,
       n.neighborhood, case when r.location is not null then c.request_id is null end as is_outside_city,
       coalesce(d.containing, 0) as districts_containing, coalesce(n.containing, 0) as neighborhoods_containing
from raw.service_requests r
left join districts d on d.request_id = r._source || ':' || r.service_request_id
left join tracts t on t.request_id = r._source || ':' || r.service_request_id
left join neighborhoods n on n.request_id = r._source || ':' || r.service_request_id
left join city c on c.request_id = r._source || ':' || r.service_request_id
"""


def test_subdivided_assignment_equals_the_plain_st_contains_join(conn, built) -> None:
    with conn.cursor() as cur:
        cur.execute(f"create temp table plain_assignment as {PLAIN_JOIN}")
        cur.execute("select count(*), count(council_district), count(tract_geoid), count(neighborhood),"
                    " count(*) filter (where is_outside_city) from plain_assignment")
        counts = cur.fetchone()
        cur.execute("""
            select count(*) from plain_assignment p
            full join intermediate.int_service_requests__located l using (request_id)
            where p.request_id is null or l.request_id is null
               or (p.council_district, p.tract_geoid, p.neighborhood, p.is_outside_city)
                  is distinct from (l.council_district, l.tract_geoid, l.neighborhood, l.is_outside_city)
        """)
        differences = cur.fetchone()[0]
        # Overlaps exist, so the tie-breaks are exercised: a point in two districts, hundreds in 2+ neighborhoods.
        cur.execute("select count(*) filter (where districts_containing > 1),"
                    " count(*) filter (where neighborhoods_containing > 1) from plain_assignment")
        overlapping = cur.fetchone()
    conn.rollback()
    assert counts[0] == 40_374 and counts[1] > 35_000 and counts[2] > 35_000 and counts[3] > 15_000
    assert differences == 0
    assert overlapping[0] >= 1 and overlapping[1] > 100


SEAM_CHECK = """
with seams as (
    select distinct st_pointonsurface(st_intersection(a.geom, b.geom)) as location
    from {{ ref('int_boundaries_subdivided') }} as a
    inner join {{ ref('int_boundaries_subdivided') }} as b
        on a.boundary_type = 'council_district' and b.boundary_type = a.boundary_type
        and a.boundary_id = b.boundary_id and a.piece_number < b.piece_number and st_intersects(a.geom, b.geom)
),
inside_no_piece as (
    select seams.location, min(districts.council_district) as expected
    from seams
    inner join {{ ref('stg_boundaries__council_districts') }} as districts
        on st_contains(districts.geom, seams.location)
    where not exists (
        select 1 from {{ ref('int_boundaries_subdivided') }} as p
        where p.boundary_type = 'council_district' and st_contains(p.geom, seams.location))
    group by seams.location
),
assigned as (
    select requests.location, requests.expected, min(pieces.boundary_id) as district
    from inside_no_piece as requests
    left join {{ ref('int_boundaries_subdivided') }} as pieces
        on pieces.boundary_type = 'council_district'
        and {{ point_in_piece('pieces', 'requests.location', ref('int_boundaries')) }}
    group by requests.location, requests.expected
)
select count(*) as seam_points, count(*) filter (where district is distinct from expected) as misplaced
from assigned
"""


def test_points_on_subdivision_seams_are_placed_in_their_district(warehouse_url, built, tmp_path) -> None:
    """ST_Subdivide's cut lines run through the districts' interiors: a point on one is inside its district but
    inside none of the pieces. The point_in_piece macro (the models' join condition) still places every such
    point of the real districts in its district; a bare ST_Contains on the pieces would place none of them."""
    command = [DBT, "show", "--inline", SEAM_CHECK, "--output", "json", "--quiet",
               "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
               "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    result = subprocess.run(command, env=dbt_env(warehouse_url), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    (row,) = json.loads(result.stdout[result.stdout.index("{"):])["show"]
    assert row["seam_points"] > 1000
    assert row["misplaced"] == 0


def test_arkansas_points_are_flagged_outside_the_city_not_dropped(conn, built) -> None:
    assert scalar(conn, "select count(*) from marts.fct_service_requests") == 34_335 + 4_505 + 1_534
    arkansas = "from marts.fct_service_requests where st_x(\"GeneralizedLocation\") between -92.6 and -92.4"
    assert scalar(conn, f"select count(*) {arkansas}") == 986 + 76 + 48
    assert scalar(conn, f'select count(*) {arkansas} and "IsOutsideCity"') == 986 + 76 + 48
    assert scalar(conn, f'select count(*) {arkansas} and coalesce("CouncilDistrict", "TractGeoid",'
                        ' "Neighborhood") is not null') == 0
    assert scalar(conn, 'select count(*) from marts.fct_service_requests where not "HasLocation"'
                        ' and "IsOutsideCity" is null') == scalar(
        conn, "select count(*) from raw.service_requests where location is null")


# ---------------------------------------------------------------------------------------------------------------
# Database objects: role, indexes, documentation
# ---------------------------------------------------------------------------------------------------------------

def test_analyst_role_reads_marts_and_nothing_in_raw(warehouse_url, built) -> None:
    analyst = psycopg2.connect(warehouse_url)
    try:
        with analyst.cursor() as cur:
            cur.execute("set role civicflow_analyst")
            for mart in MARTS:
                cur.execute(f"select count(*) from marts.{mart}")
                assert cur.fetchone()[0] > 0, mart
            for table in ("raw.service_requests", "raw.operating_budget", "intermediate.int_boundaries"):
                cur.execute("savepoint probe")
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(f"select 1 from {table} limit 1")
                cur.execute("rollback to savepoint probe")
            cur.execute("savepoint probe")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("delete from marts.budget_variance")
            cur.execute("rollback to savepoint probe")
            cur.execute("select has_schema_privilege('marts', 'create'), has_schema_privilege('raw', 'usage')")
            assert cur.fetchone() == (False, False)
    finally:
        analyst.close()


def test_role_grant_is_idempotent(warehouse_url, built, tmp_path) -> None:
    """A second build (incremental fact, rebuilt tables) keeps the role's access and grants nothing more."""
    run_dbt(warehouse_url, tmp_path, "run", "--select", "service_coverage fct_service_requests")
    conn = psycopg2.connect(warehouse_url)
    try:
        privileges = scalar(conn, "select string_agg(distinct privilege_type, ',') from"
                                  " information_schema.role_table_grants where grantee = 'civicflow_analyst'")
        assert privileges == "SELECT"
        assert scalar(conn, "select count(*) from pg_roles where rolname = 'civicflow_analyst'") == 1
    finally:
        conn.close()


def test_every_spatial_column_has_a_gist_index_and_marts_have_btree_indexes(conn, built) -> None:
    unindexed = scalar(conn, """
        select count(*) from pg_attribute a
        join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        join pg_type t on t.oid = a.atttypid
        where n.nspname in ('intermediate', 'marts') and c.relkind in ('r', 'p')
          and t.typname in ('geometry', 'geography')
          and not exists (select 1 from pg_index i join pg_class ic on ic.oid = i.indexrelid
                          join pg_am am on am.oid = ic.relam
                          where i.indrelid = c.oid and i.indkey[0] = a.attnum and am.amname = 'gist')
    """)
    assert unindexed == 0
    for mart, column in [("fct_service_requests", "CouncilDistrict"), ("fct_service_requests", "TractGeoid"),
                         ("fct_service_requests", "RequestType"), ("fct_service_requests", "CreatedMonth"),
                         ("service_levels", "Month"), ("service_levels_by_tract", "TractGeoid"),
                         ("budget_variance", "Department"), ("demographic_equity", "TractGeoid")]:
        assert scalar(conn, "select count(*) from pg_indexes where schemaname = 'marts' and tablename = %s"
                            " and indexdef like %s", mart, f'%("{column}"%') >= 1, (mart, column)


def test_model_and_column_descriptions_are_in_the_database(conn, built) -> None:
    with conn.cursor() as cur:
        cur.execute("""
            select c.relname, obj_description(c.oid, 'pg_class') is not null,
                   count(*) filter (where col_description(c.oid, a.attnum) is null)
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname in ('marts', 'intermediate', 'reference') and c.relkind in ('r', 'p', 'v')
            group by c.relname, c.oid
        """)
        described = {name: (has_description, undescribed) for name, has_description, undescribed in cur.fetchall()}
    assert set(MARTS) <= set(described)
    assert {name: d for name, d in described.items() if d != (True, 0)} == {}
