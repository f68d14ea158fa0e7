"""How a load behaves when extracts change, break, or the loader dies; built from real rows."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from civicflow_assets.extracts import SPLIT_BYTES, csv_extract
from civicflow_assets.landing import land_columns, land_files, typing_select
from civicflow_assets.settings import PACKAGE_DIR, REPO_ROOT
from civicflow_assets.sources.mapping import Mapping, load_mappings, parse_mapping
from tests.conftest import scalar
from tests.shared_data import shared

MAPPINGS = load_mappings([PACKAGE_DIR / "sources" / "mappings"])


def _sidewalks() -> tuple[list[str], list[list[str]]]:
    path = shared("data", "chattanooga", "311", "sidewalks_with_department_pzwn-f2mv.csv")
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _mapping(name: str, target: str) -> Mapping:
    return dataclasses.replace(MAPPINGS["chattanooga_311_requests"], name=name, target=target)


def test_changed_new_and_removed_rows(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    mapping = _mapping("behaviour_changes", "behaviour_changes")
    first = land_files(conn, mapping, [_write(tmp_path / "v1.csv", header, rows[:1000])])
    assert (first.inserted, first.updated, first.deleted) == (1000, 0, 0)
    description = header.index("Description")
    changed = [list(r) for r in rows[:1000]]
    for row in changed[:10]:
        row[description] += " (edited)"
    second_rows = changed[5:] + rows[1000:1003]  # 5 removed (of which 5 edited), 5 edited kept, 3 new
    second = land_files(conn, mapping, [_write(tmp_path / "v2.csv", header, second_rows)])
    assert (second.inserted, second.updated, second.deleted, second.unchanged) == (3, 5, 5, 990)
    assert scalar(conn, "select count(*) from raw.behaviour_changes where description like '%(edited)'") == 5
    assert scalar(conn, "select count(*) from raw.behaviour_changes") == 998


def test_bad_rows_are_quarantined_with_their_reasons(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    good = rows[:200]
    bad_date = list(rows[200])
    bad_date[header.index("Created Date")] = "02/30/2024 10:00:00 AM"
    bad_point = list(rows[201])
    bad_point[header.index("PublicLocation")] = "POINT (-85.3 35.0"
    no_key = list(rows[202])
    no_key[header.index("Service Request Key")] = ""
    not_yes_no = list(rows[203])
    not_yes_no[header.index("isPublic")] = "maybe"
    duplicate = list(rows[0])
    path = _write(tmp_path / "bad.csv", header, [*good, bad_date, bad_point, no_key, not_yes_no, duplicate])
    with path.open("a", newline="") as handle:
        handle.write("123,too,few,fields\n")
    result = land_files(conn, _mapping("behaviour_bad", "behaviour_bad"), [path])
    assert (result.read, result.loaded, result.quarantined) == (206, 200, 6)
    assert result.safe_typing
    with conn.cursor() as cur:
        cur.execute("select _record, reasons from raw._quarantine where _source = 'behaviour_bad'"
                    " order by _record")
        reasons = dict(cur.fetchall())
    conn.commit()
    assert reasons.pop(206)[0] == "row has 4 fields, the header has 16"
    assert reasons == {
        1: ["duplicate key " + rows[0][0] + ": a later record of this extract supersedes it"],
        201: ["created_at (Created Date): value is not a date in format %m/%d/%Y %I:%M:%S %p"],
        202: ["location (PublicLocation): value is not WKT geometry"],
        203: ["service_request_id (Service Request Key): required value missing"],
        204: ["is_public (isPublic): value is not a yes/no value"],
    }
    assert scalar(conn, "select raw_row ->> 'Created Date' from raw._quarantine"
                        " where _source = 'behaviour_bad' and _record = 201") == "02/30/2024 10:00:00 AM"


def test_blanks_around_a_value_do_not_change_it(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    created = header.index("Created Date")
    padded = [list(r) for r in rows[:100]]
    public = header.index("isPublic")
    for row in padded[:50]:
        row[created] = f"  {row[created]} "
        row[public] = f" {row[public].upper()}  "
    fast = land_files(conn, _mapping("behaviour_padded", "behaviour_padded"),
                      [_write(tmp_path / "padded.csv", header, padded)])
    assert (fast.loaded, fast.safe_typing) == (100, False)
    blank = [list(r) for r in rows[:100]]
    blank[0][header.index("Completed At")] = "   "
    safe = land_files(conn, _mapping("behaviour_blank", "behaviour_blank"),
                      [_write(tmp_path / "blank.csv", header, blank)])
    assert (safe.loaded, safe.safe_typing) == (100, True)
    assert scalar(conn, "select count(*) from raw.behaviour_padded p join raw.behaviour_blank b"
                        " using (service_request_id) where p.created_at = b.created_at"
                        " and p.is_public is not distinct from b.is_public") == 100
    assert scalar(conn, "select closed_at is null from raw.behaviour_blank where _record = 1")


def test_a_killed_load_leaves_the_previous_table_intact(warehouse_url: str, conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    mapping_yaml = MAPPINGS["chattanooga_311_requests"].origin
    assert mapping_yaml is not None
    land_files(conn, _mapping("behaviour_kill", "behaviour_kill"), [_write(tmp_path / "small.csv", header, rows)])
    before = scalar(conn, "select count(*)::text || sum(hashtext(_row_hash)) from raw.behaviour_kill")
    big = tmp_path / "big.csv"
    with big.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for copy in range(60):
            writer.writerows([[f"{copy}-{r[0]}", *r[1:]] for r in rows])
    loader = (
        "import dataclasses, sys, psycopg2\n"
        "from pathlib import Path\n"
        "from civicflow_assets.landing import land_files\n"
        "from civicflow_assets.sources.mapping import load_mapping\n"
        f"m = dataclasses.replace(load_mapping(Path({str(mapping_yaml)!r})), name='behaviour_kill',"
        " target='behaviour_kill')\n"
        "land_files(psycopg2.connect(sys.argv[1]), m, [Path(sys.argv[2])])\n"
    )
    url = f"{warehouse_url}?application_name=civicflow_kill_test"
    process = subprocess.Popen([sys.executable, "-c", loader, url, str(big)], cwd=REPO_ROOT,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while scalar(conn, "select count(*) from pg_stat_activity where application_name = 'civicflow_kill_test'"
                       " and state = 'active' and query ilike 'create temp table %%typed%%'") == 0:
        assert process.poll() is None, "the load finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert scalar(conn, "select count(*)::text || sum(hashtext(_row_hash)) from raw.behaviour_kill") == before
    while scalar(conn, "select count(*) from pg_stat_activity where application_name = 'civicflow_kill_test'"):
        time.sleep(0.1)  # the orphaned backend rolls back once it notices its client is gone
    assert scalar(conn, "select count(*)::text || sum(hashtext(_row_hash)) from raw.behaviour_kill") == before



def _large(path: Path, header: list[str], rows: list[list[str]], bad_last: bool = False,
           repeat_first: bool = False) -> tuple[Path, int]:
    """Copies of the real rows past the size that is copied in halves, every other description over three lines
    with quotes inside, so that a split has to find a record's end; then a row with a bad date, or the first
    row again."""
    description, created = header.index("Description"), header.index("Created Date")
    written = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        while handle.tell() < SPLIT_BYTES:
            for row in rows:
                row = [f"{written}-{row[0]}", *row[1:]]
                if written % 2:
                    row[description] = f'{row[description]}\n"quoted", and\non a third line'
                writer.writerow(row)
                written += 1
        if bad_last:
            writer.writerow([f"{written}-bad", *rows[0][1:created], "02/30/2024 10:00:00 AM", *rows[0][created + 1:]])
            written += 1
        if repeat_first:
            writer.writerow([f"0-{rows[0][0]}", *rows[0][1:]])
            written += 1
    return path, written


def test_a_large_file_lands_in_two_halves_with_every_record_in_place(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    path, written = _large(tmp_path / "large.csv", header, rows)
    assert csv_extract(path).halves() is not None
    # What a first load killed before its swap leaves: the next load of the table drops it.
    orphan = f"raw._halves_{hashlib.md5(b'behaviour_halves').hexdigest()[:8]}_left_by_a_killed_load"
    with conn.cursor() as cur:
        cur.execute(f"create schema if not exists raw; create table {orphan} (x int)")
    conn.commit()
    result = land_files(conn, _mapping("behaviour_halves", "behaviour_halves"), [path])
    assert (result.read, result.loaded, result.quarantined) == (written, written, 0)
    # Each record keeps its number in the file: the n-th written (from 0) is record n + 1, in both halves.
    assert scalar(conn, "select count(*) from raw.behaviour_halves"
                        " where _record = split_part(service_request_id, '-', 1)::int + 1") == written
    assert scalar(conn, "select count(*) from raw.behaviour_halves where description like '%\n\"quoted\", and\n%'"
                        " and _record % 2 = 0") == written // 2
    assert scalar(conn, "select count(*) from pg_tables where tablename like '\\_halves\\_%'") == 0
    assert scalar(conn, "select string_agg(indexdef, '; ' order by indexname) from pg_indexes"
                        " where tablename = 'behaviour_halves'") == (
        "CREATE INDEX behaviour_halves_location_idx ON raw.behaviour_halves USING gist (location); "
        "CREATE UNIQUE INDEX behaviour_halves_pkey ON raw.behaviour_halves USING btree (_row_key, _source)")
    assert scalar(conn, "select string_agg(attname, ',' order by attnum) from pg_attribute where attnotnull"
                        " and attrelid = 'raw.behaviour_halves'::regclass and attnum > 0") == \
        "_source,_row_key,_source_file,_record,_loaded_at,_batch_id,_row_hash"


def test_the_bench_limit_types_rows_as_the_landing_does(conn, tmp_path: Path) -> None:
    """bench/ingest.py's limit runs `typing_select` after a plain COPY: it must type every value as a load does."""
    header, rows = _sidewalks()
    path = _write(tmp_path / "limit.csv", header, rows[:500])
    mapping = _mapping("behaviour_limit", "behaviour_limit")
    land_files(conn, mapping, [path])
    extract = csv_extract(path)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("create temp table limit_land ({})").format(land_columns(len(header))))
        with path.open("rb") as handle:
            cur.copy_expert(f"copy limit_land ({', '.join(f'c{i}' for i in range(len(header)))})"
                            " from stdin with (format csv, header true)", handle)
        cur.execute("set timezone = %s", (mapping.timezone,))
        cur.execute(sql.SQL("create temp table limit_typed as {}").format(
            typing_select(cur, mapping, extract, sql.Identifier("limit_land"))))
        cur.execute("select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute"
                    " where attrelid = 'raw.behaviour_limit'::regclass and attnum > 0"
                    " and attname not in ('_loaded_at', '_batch_id')")
        columns = cur.fetchone()[0]
    # Whole rows compared as their text, which spells out every value, a geometry's coordinates included.
    assert scalar(conn, f"select count(*) from ((select row({columns})::text from raw.behaviour_limit except all"
                        f" select row({columns})::text from limit_typed) union all (select row({columns})::text"
                        f" from limit_typed except all select row({columns})::text from raw.behaviour_limit)) d") == 0
    assert scalar(conn, "select count(*) from limit_typed") == 500


@pytest.mark.parametrize(("problem", "reason"), [
    ("bad_last", "created_at (Created Date): value is not a date in format %m/%d/%Y %I:%M:%S %p"),
    ("repeat_first", "duplicate key 0-{key}: a later record of this extract supersedes it"),
])
def test_a_bad_row_in_the_second_half_is_quarantined_and_leaves_no_table_behind(problem, reason, conn,
                                                                                 tmp_path: Path) -> None:
    header, rows = _sidewalks()
    path, written = _large(tmp_path / "large_bad.csv", header, rows, **{problem: True})
    source = f"behaviour_halves_{problem}"
    result = land_files(conn, _mapping(source, source), [path])
    assert (result.read, result.loaded, result.quarantined) == (written, written - 1, 1)
    assert scalar(conn, f"select reasons[1] from raw._quarantine where _source = '{source}'") == \
        reason.format(key=rows[0][0])
    assert scalar(conn, "select count(*) from pg_tables where tablename like '\\_halves\\_%'") == 0


SAN_FRANCISCO_MAPPING = """
name: sanfrancisco_311
description: San Francisco 311 requests exported as CSV (GeoReport v2 field names, lat/long columns).
target: service_requests
files: ["sf311/*.csv"]
timezone: America/Los_Angeles
date_format: "%Y-%m-%d %H:%M:%S.%f"
key: [service_request_id]
null_values:
  "0.0": "SF writes 0.0 where a request has no coordinates"
fields:
  service_request_id: {column: service_request_id, required: true}
  created_at: {column: requested_datetime, type: timestamp, required: true}
  due_at: {column: expected_datetime, type: timestamp}
  request_type: {column: service_name, required: true}
  request_type_code: service_code
  description: description
  status_code: status
  department: agency_responsible
  location: {type: point, lon: long, lat: lat}
"""


def _sf_requests_csv(folder: Path) -> int:
    """A city the code has never seen: the recorded San Francisco Open311 XML, as a city would export it."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(shared("data", "api", "open311", "sf_requests_2012-05-22.xml"))
    columns = ["service_request_id", "status", "service_name", "service_code", "description",
               "agency_responsible", "requested_datetime", "expected_datetime", "address", "lat", "long"]
    rows = [[(r.findtext(c) or "") for c in columns] for r in tree.getroot().iter("request")]
    folder.mkdir()
    _write(folder / "requests_2012-05-22.csv", columns, rows)
    return len(rows)


def test_a_new_city_loads_with_only_a_yaml_mapping(conn, tmp_path: Path) -> None:
    mapping_dir = tmp_path / "mappings"
    mapping_dir.mkdir()
    (mapping_dir / "sanfrancisco_311.yaml").write_text(SAN_FRANCISCO_MAPPING)
    rows = _sf_requests_csv(tmp_path / "sf311")
    mapping = load_mappings([mapping_dir])["sanfrancisco_311"]
    result = land_files(conn, mapping, mapping.find_files([tmp_path]))
    assert rows == 56
    assert (result.read, result.loaded, result.quarantined) == (56, 56, 0)
    sf = "from raw.service_requests where _source = 'sanfrancisco_311'"
    assert scalar(conn, f"select count(*) {sf} and location is null") == 9
    assert scalar(conn, f"select to_char(created_at at time zone 'America/Los_Angeles', 'HH24:MI:SS.MS') {sf}"
                        " and service_request_id = '1129806'") == "23:57:23.970"


def test_mapping_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="type 'datetime'; use one of"):
        parse_mapping({"name": "x", "target": "t", "fields": {"a": {"column": "A", "type": "datetime"}}})
    with pytest.raises(ValueError, match="an incremental source needs a `key`"):
        parse_mapping({"name": "x", "target": "t", "mode": "incremental", "fields": {"a": "A"}})


def test_a_file_without_the_mapped_columns_fails_naming_them(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    path = _write(tmp_path / "renamed.csv", [h.replace("Created Date", "Opened") for h in header], rows[:5])
    with pytest.raises(Exception, match=r"columns \['Created Date'\] named by mapping"):
        land_files(conn, _mapping("behaviour_columns", "behaviour_columns"), [path])
    assert scalar(conn, "select to_regclass('raw.behaviour_columns') is null")


def test_existing_field_of_another_type_is_refused(conn, tmp_path: Path) -> None:
    header, rows = _sidewalks()
    land_files(conn, _mapping("behaviour_types", "behaviour_types"), [_write(tmp_path / "a.csv", header, rows[:3])])
    clash = dataclasses.replace(
        _mapping("behaviour_types_2", "behaviour_types"),
        fields=tuple(dataclasses.replace(f, type="text") if f.name == "created_at" else f
                     for f in MAPPINGS["chattanooga_311_requests"].fields))
    with pytest.raises(Exception, match=r"created_at is text but raw\.behaviour_types\.created_at is already"):
        land_files(conn, clash, [tmp_path / "a.csv"])


def test_a_failed_load_leaves_the_connection_usable(warehouse_url: str, tmp_path: Path) -> None:
    connection = psycopg2.connect(warehouse_url)
    with pytest.raises(Exception, match="not in the header"):
        land_files(connection, _mapping("behaviour_open", "behaviour_open"),
                   [_write(tmp_path / "x.csv", ["x"], [["1"]])])
    with connection.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
    connection.close()


def test_a_shapefile_lands_reprojected_to_4326(conn, tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    districts = gpd.read_file(shared("data", "chattanooga", "boundaries", "council_districts_geochatt.geojson"))
    # Tennessee State Plane (feet), as a county GIS office would hand it over.
    districts.to_crs(2274).to_file(tmp_path / "districts.shp")
    mapping = parse_mapping({
        "name": "behaviour_shapefile", "target": "behaviour_shapefile", "format": "shapefile",
        "files": ["*.shp"], "key": ["district"],
        "fields": {"district": {"column": "council", "required": True}, "representative": "rep_counci",
                   "geom": {"column": "geometry", "type": "geometry"}},
    })
    result = land_files(conn, mapping, mapping.find_files([tmp_path]))
    assert (result.read, result.loaded) == (9, 9)
    assert scalar(conn, "select count(*) from raw.behaviour_shapefile where st_srid(geom) = 4326") == 9
    # Same place as the GeoJSON's lon/lat polygons, to well under a metre.
    original = shapely.to_geojson(districts.loc[districts["council"] == "1"].geometry.iloc[0])
    assert scalar(conn, "select st_hausdorffdistance(st_transform(geom, 2274),"
                        " st_transform(st_setsrid(st_geomfromgeojson(%s), 4326), 2274))"
                        " from raw.behaviour_shapefile where district = '1'", original) < 3  # feet
