"""The incremental fact on real data: after a first build, 1% of the real pothole requests change and 1% new ones
arrive; the next dbt build rewrites exactly those rows of fct_service_requests (and of the located intermediate and
the published, redacted pub_service_requests), and a --full-refresh rebuild gives the same tables. The fact is built
partitioned by month here. A changed privacy policy makes the next build redact every published row again.

Runs in a database of its own (the session's test database name + "_incremental"): it changes the raw data that
test_marts_real.py compares with the CSV files."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from civicflow_assets.checks import load_check_settings, load_datasets
from civicflow_assets.checks.policy import write_policy
from civicflow_assets.database import recreate_database
from civicflow_assets.landing import land_files
from tests.conftest import TEST_DATABASE, scalar
from tests.shared_data import shared
from tests.test_marts_real import DBT_SELECT as MARTS_SELECT
from tests.test_marts_real import MAPPINGS, land_real_data, run_dbt

csv.field_size_limit(sys.maxsize)

POTHOLES_FILE = ("data", "chattanooga", "311", "potholes_distressed_pavement_2x73-xesh.csv")
COMPARED_MODELS = ("marts.fct_service_requests", "intermediate.int_service_requests__located",
                   "publish.pub_service_requests")
DBT_SELECT = [*MARTS_SELECT[:2], "pub_service_requests", *MARTS_SELECT[2:]]
NEW_MONTH_ROWS = 3
# The partitioned fact, as a deployment at scale builds it (test_marts_real.py builds the default, unpartitioned).
PARTITIONED = ("--vars", "partition_fact_by_month: true")
PARTITIONS_SQL = """
    select pg_get_expr(part.relpartbound, part.oid), count(*) over ()
    from pg_inherits join pg_class as part on part.oid = pg_inherits.inhrelid
    where pg_inherits.inhparent = 'marts.fct_service_requests'::regclass"""


@pytest.fixture(scope="module")
def incremental_url(warehouse_url: str) -> Iterator[str]:
    name = f"{TEST_DATABASE}_incremental"
    yield recreate_database(warehouse_url, name)
    admin_conn = psycopg2.connect(urlunparse(urlparse(warehouse_url)._replace(path="/postgres")))
    admin_conn.autocommit = True
    with admin_conn.cursor() as cur:
        cur.execute(f"drop database if exists {name} with (force)")
    admin_conn.close()


def _changed_extract(source: Path, out: Path, seed: int = 11) -> tuple[set[str], set[str]]:
    """The real potholes export with 1% of its rows changed (completed one hour later, or completed now for an
    open one) and 1% new rows (copies of real rows under new keys). Answers the changed and the new keys."""
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    rng = random.Random(seed)
    share = len(rows) // 100
    changed = rng.sample(range(len(rows)), share)
    for i in changed:
        row = rows[i]
        completed = row["completed_at"] or row["created_date"]
        hour = int(completed[11:13]) % 12 + 1  # "MM/DD/YYYY hh:mm:ss AM": hh 01-12; a different, valid hour
        row["completed_at"] = f"{completed[:11]}{hour:02d}{completed[13:]}"
        row["status_code"] = "O-CLOSED"
    first_new = max(int(r["service_request_key"]) for r in rows if r["service_request_key"].isdigit()) + 1
    new_rows = []
    for n, i in enumerate(rng.sample(range(len(rows)), share)):
        new_rows.append({**rows[i], "service_request_key": str(first_new + n)})
    for row in new_rows[:NEW_MONTH_ROWS]:  # a month the fact has no partition for yet (the export ends in 2024-09)
        row.update(created_date="10/02/2024 09:15:00 AM", due_at="", completed_at="", status_code="O-NEW")
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows + new_rows)
    return ({rows[i]["service_request_key"] for i in changed}, {r["service_request_key"] for r in new_rows})


def _snapshot(conn, table: str, label: str) -> str:
    """A copy of the table without the run marker, geometry as text, for EXCEPT in both directions."""
    copy = f"{label}_{table.split('.')[1]}"
    with conn.cursor() as cur:
        cur.execute("select column_name, data_type, udt_name from information_schema.columns"
                    " where table_schema || '.' || table_name = %s and column_name <> 'DbtRunId'"
                    " order by ordinal_position", (table,))
        columns = [f'"{name}"::text as "{name}"' if udt in ("geometry", "geography") else f'"{name}"'
                   for name, _, udt in cur.fetchall()]
        cur.execute(f"drop table if exists {copy}")
        cur.execute(f"create table {copy} as select {', '.join(columns)} from {table}")
    conn.commit()
    return copy


@pytest.fixture(scope="module")
def runs(incremental_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("dbt_marts_incremental")
    land_real_data(incremental_url)
    with psycopg2.connect(incremental_url) as policy_conn:
        write_policy(policy_conn, load_check_settings(), load_datasets())
    first = run_dbt(incremental_url, work / "first", "build", *DBT_SELECT, *PARTITIONED)
    conn = psycopg2.connect(incremental_url)
    before = {
        "max_modified": scalar(conn, 'select max("ModifiedDate") from marts.fct_service_requests'),
        "rows": scalar(conn, "select count(*) from marts.fct_service_requests"),
        "hours": dict(_fetch(conn, 'select "ServiceRequestId", "HoursToClose" from marts.fct_service_requests'
                                   " where \"SourceSystem\" = 'chattanooga_311_potholes'")),
    }
    changed, new = _changed_extract(shared(*POTHOLES_FILE), work / "potholes_changed.csv")
    mapping = MAPPINGS["chattanooga_311_potholes"]
    loaded = land_files(conn, mapping, [work / "potholes_changed.csv"])
    second = run_dbt(incremental_url, work / "second", "build", *DBT_SELECT, *PARTITIONED)
    snapshots = {table: _snapshot(conn, table, "incremental") for table in COMPARED_MODELS}
    after = {
        "run_ids": dict(_fetch(conn, 'select "ServiceRequestId", "DbtRunId" from marts.fct_service_requests'
                                     " where \"SourceSystem\" = 'chattanooga_311_potholes'")),
        "located_modified": dict(_fetch(
            conn, "select service_request_id, modified_at from intermediate.int_service_requests__located"
                  " where source_system = 'chattanooga_311_potholes'")),
        "hours": dict(_fetch(conn, 'select "ServiceRequestId", "HoursToClose" from marts.fct_service_requests'
                                   " where \"SourceSystem\" = 'chattanooga_311_potholes'")),
        "partitions": _fetch(conn, PARTITIONS_SQL),
        "months": scalar(conn, 'select count(distinct "CreatedMonth") from marts.fct_service_requests'),
        "in_default": scalar(conn, 'select count("CreatedMonth") from marts.fct_service_requests'
                                   " where tableoid::regclass::text like '%default%'"),
        "october_2024": _fetch(conn, "explain select count(*) from marts.fct_service_requests"
                                     " where \"CreatedMonth\" = date '2024-10-01'"),
    }
    conn.close()
    run_dbt(incremental_url, work / "full", "build", *DBT_SELECT, *PARTITIONED, "--full-refresh")
    return {"first": first, "second": second, "before": before, "after": after, "changed": changed, "new": new,
            "loaded": loaded, "snapshots": snapshots}


def _fetch(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    conn.commit()
    return rows


def _invocation_id(run_results: dict) -> str:
    return run_results["metadata"]["invocation_id"]


def test_the_changed_extract_changes_one_percent_and_adds_one_percent(runs) -> None:
    loaded = runs["loaded"]
    assert (loaded.updated, loaded.inserted, loaded.deleted) == (343, 343, 0)
    assert len(runs["changed"]) == len(runs["new"]) == 343


def test_second_run_writes_exactly_the_changed_and_new_rows(runs) -> None:
    second = _invocation_id(runs["second"])
    written = {key for key, run_id in runs["after"]["run_ids"].items() if run_id == second}
    assert written == runs["changed"] | runs["new"]
    assert {run_id for key, run_id in runs["after"]["run_ids"].items() if key not in written} == {
        _invocation_id(runs["first"])}
    modified_later = {key for key, modified in runs["after"]["located_modified"].items()
                      if modified > runs["before"]["max_modified"]}
    assert modified_later == runs["changed"] | runs["new"]
    assert len(runs["after"]["run_ids"]) == len(runs["before"]["hours"]) + 343


def test_changed_rows_carry_the_new_values(runs) -> None:
    before, after = runs["before"]["hours"], runs["after"]["hours"]
    differs = {key for key in runs["changed"] if before[key] != after[key]}
    assert len(differs) > 0.9 * len(runs["changed"])  # a few legacy rows keep a null (negative) duration
    assert {key for key in before if key not in runs["changed"] and before[key] != after[key]} == set()


def test_incremental_models_ran_as_merges(runs) -> None:
    results = {r["unique_id"].split(".")[-1]: r for r in runs["second"]["results"]}
    for model in ("fct_service_requests", "int_service_requests__located", "pub_service_requests"):
        assert results[model]["status"] == "success"
        assert results[model]["adapter_response"]["_message"] == "MERGE 686", model


@pytest.mark.parametrize("table", sorted(COMPARED_MODELS))
def test_full_refresh_gives_the_same_table(incremental_url, runs, table) -> None:
    conn = psycopg2.connect(incremental_url)
    try:
        rebuilt = _snapshot(conn, table, "full_refresh")
        incremental = runs["snapshots"][table]
        assert scalar(conn, f"select count(*) from {rebuilt}") == scalar(conn, f"select count(*) from {incremental}")
        assert scalar(conn, f"select count(*) from (select * from {incremental} except select * from {rebuilt}) d") == 0
        assert scalar(conn, f"select count(*) from (select * from {rebuilt} except select * from {incremental}) d") == 0
    finally:
        conn.close()


def test_the_fact_is_partitioned_by_month_and_new_months_get_their_own(runs) -> None:
    partitions = runs["after"]["partitions"]
    bounds = [bound for bound, _ in partitions]
    assert bounds.count("DEFAULT") == 1
    assert len(partitions) == runs["after"]["months"] + 1  # one per month in the data, and the default
    assert "FOR VALUES FROM ('2024-10-01') TO ('2024-11-01')" in bounds  # split out of the default after the merge
    assert runs["after"]["in_default"] == 0
    plan = "\n".join(line for (line,) in runs["after"]["october_2024"])
    assert plan.count(" on fct_service_requests_") == 1, plan  # the month's partition only


def test_a_changed_policy_redacts_every_published_row_again(incremental_url, runs, tmp_path) -> None:
    settings = load_check_settings()
    stricter = dataclasses.replace(settings, sensitive_request_types=(*settings.sensitive_request_types, "Potholes"))
    conn = psycopg2.connect(incremental_url)
    try:
        potholes = 'select count(*) from publish.pub_service_requests where "RequestType" = \'Potholes\''
        assert scalar(conn, potholes) > 0
        write_policy(conn, stricter, load_datasets(settings=stricter))
        conn.commit()
        run_dbt(incremental_url, tmp_path / "stricter", "run", "--select", "pub_service_requests", *PARTITIONED)
        assert scalar(conn, potholes) == 0
        assert scalar(conn, "select count(*) from publish.pub_service_requests") > 0
        write_policy(conn, settings, load_datasets(settings=settings))
        conn.commit()
        run_dbt(incremental_url, tmp_path / "again", "run", "--select", "pub_service_requests", *PARTITIONED)
        assert scalar(conn, potholes) > 0
        restored = _snapshot(conn, "publish.pub_service_requests", "restored")
        first = runs["snapshots"]["publish.pub_service_requests"]
        assert scalar(conn, f"select count(*) from (select * from {first} except select * from {restored}) d") == 0
        assert scalar(conn, f"select count(*) from (select * from {restored} except select * from {first}) d") == 0
    finally:
        conn.close()


def test_a_backfill_of_three_days_merges_again_the_requests_created_on_them(incremental_url, runs,
                                                                           monkeypatch) -> None:
    from dagster import materialize

    from civicflow_assets.dbt import dbt_resource, service_request_facts
    from tests.test_marts_real import dbt_env

    conn = psycopg2.connect(incremental_url)
    try:
        busiest = scalar(conn, """select ("CreatedDate" at time zone 'America/New_York')::date from
                                  marts.fct_service_requests group by 1 order by count(*) desc, 1 limit 1""")
        days = [busiest + dt.timedelta(days=i) for i in range(3)]
        created_day = """select "RequestId", "DbtRunId", ("CreatedDate" at time zone 'America/New_York')::date
                         from marts.fct_service_requests"""
        before = {key: (run_id, day) for key, run_id, day in _fetch(conn, created_day)}
        for name, value in dbt_env(incremental_url).items():
            if name.startswith("CIVICFLOW_PG_"):
                monkeypatch.setenv(name, value)
        result = materialize(
            [service_request_facts],
            resources={"dbt": dbt_resource()},
            tags={"dagster/asset_partition_range_start": days[0].isoformat(),
                  "dagster/asset_partition_range_end": days[-1].isoformat()})
        assert result.success
        assert sorted(e.partition for e in result.get_asset_materialization_events()) == [
            d.isoformat() for d in days]
        after = {key: run_id for key, run_id, _ in _fetch(conn, created_day)}
    finally:
        conn.close()
    assert after.keys() == before.keys()
    rewritten = {key for key, run_id in after.items() if run_id != before[key][0]}
    assert rewritten == {key for key, (_, day) in before.items() if day in days}
    assert len(rewritten) > 0 and len({after[key] for key in rewritten}) == 1


def test_a_request_gone_from_its_source_is_no_longer_published(incremental_url, runs, tmp_path) -> None:
    published = """select count(*) from publish.pub_service_requests
                   where "SourceSystem" = 'chattanooga_311_potholes' and "ServiceRequestId" = '{}'"""
    conn = psycopg2.connect(incremental_url)
    try:
        gone = scalar(conn, "select service_request_id from raw.service_requests"
                            " where _source = 'chattanooga_311_potholes' order by service_request_id limit 1")
        assert scalar(conn, published.format(gone)) == 1
        with conn.cursor() as cur:
            cur.execute("delete from raw.service_requests where _source = 'chattanooga_311_potholes'"
                        " and service_request_id = %s", (gone,))
        conn.commit()
        run_dbt(incremental_url, tmp_path / "gone", "run", "--select",
                "int_service_requests__located fct_service_requests pub_service_requests", *PARTITIONED)
        assert scalar(conn, published.format(gone)) == 0
        assert scalar(conn, "select count(*) from publish.pub_service_requests") == scalar(
            conn, 'select count(*) from marts.fct_service_requests where not coalesce("RequestType" = any(%s), false)',
            list(load_check_settings().sensitive_request_types))
    finally:
        conn.close()
