"""The Dagster side: one asset graph from raw to staging, dbt tests as checks, the Open311 asset's cursor."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, AssetKey, materialize

from civicflow_assets import raw_assets
from civicflow_assets.database import PostgresResource
from civicflow_assets.publish.catalog import load_catalog as publication_catalog
from civicflow_assets.settings import REPO_ROOT
from civicflow_assets.sources.resources import Open311Resource
from tests.conftest import scalar
from tests.replay_server import ReplayServer
from tests.shared_data import shared


@pytest.fixture(scope="module")
def defs(warehouse_url: str):
    from civicflow_assets.definitions import defs

    return defs


def test_one_graph_from_raw_assets_to_staging_models(defs) -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    raw = {k for k in keys if k.startswith("raw/")}
    staging = {k for k in keys if k.startswith("staging/")}
    assert {"raw/service_requests", "raw/open311_requests", "raw/acs_tracts_api", "raw/census_tracts_2020",
            "raw/operating_budget", "raw/council_districts", "raw/fire_stations"} <= raw
    assert "staging/stg_city311__service_requests" in staging
    # Staging models hang off the raw assets (dbt sources are the raw assets, not separate nodes).
    parents = graph.get(AssetKey(["staging", "stg_city311__service_requests"])).parent_keys
    assert parents == {AssetKey(["raw", "service_requests"])}
    check_names = {check.name for check in graph.asset_check_keys}
    assert "not_null_stg_city311__service_requests_service_request_id" in check_names


def test_workspace_loads_in_dagster(warehouse_url: str, tmp_path) -> None:
    dagster = REPO_ROOT / ".civicflow" / "venv" / "bin" / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path),
           "CIVICFLOW_DAGSTER_PG_URL": warehouse_url.replace("postgresql://", "postgresql+psycopg2://")}
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_raw_file_assets_to_marts_checks_and_ckan_on_real_data(defs, warehouse_url: str, conn, ckan) -> None:
    job = defs.resolve_job_def("everything")
    from civicflow_assets.sources.resources import SourceFilesResource

    dirs = [str(shared("data", "chattanooga")), str(shared("data", "boston"))]
    resources = {**defs.resources, "source_files": SourceFilesResource(data_dirs=dirs),
                 "postgres": PostgresResource(url=warehouse_url)}
    result = materialize([*defs.assets, *defs.asset_checks], resources=resources, selection=job.asset_selection,  # type: ignore[misc]
                         raise_on_error=False)
    assert result.success
    by_key = {e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
              for e in result.get_asset_materialization_events()}
    service = by_key["raw/service_requests"]
    assert service["rows_read"].value == 34_335 + 4_505 + 1_534
    for metadata in by_key.values():
        if "rows_read" in metadata:
            assert metadata["rows_read"].value == metadata["rows_loaded"].value + metadata["rows_quarantined"].value
    assert by_key["raw/neighborhoods"]["rows_quarantined"].value == 1
    checks = result.get_asset_check_evaluations()
    failed = {(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed}
    assert checks and all(c.severity == AssetCheckSeverity.WARN for c in checks if not c.passed), failed
    # The one open-data rule this data breaks, non-blocking: 1,123 points outside the city box (Q2).
    assert failed == {("publish/pub_service_requests", "q2_values_in_range")}, failed
    assert scalar(conn, "select count(*) from staging.stg_city311__service_requests"
                        " where request_type = 'Pothole'") == 0

    published = {key: metadata for key, metadata in by_key.items() if key.startswith("ckan/")}
    assert published.keys() == {f"ckan/{name}" for name in publication_catalog().datasets} | {
        "ckan/data_json"}
    for name, spec in publication_catalog().datasets.items():
        package = ckan.action.package_show(id=spec.ckan_name)
        datastore = next(r for r in package["resources"] if r.get("datastore_active"))
        total = ckan.action.datastore_search(resource_id=datastore["id"], limit=0)["total"]
        assert total == scalar(conn, f"select count(*) from {spec.table}"), name


def _chicago() -> list[dict]:
    return json.loads(shared("data", "api", "open311", "chicago_requests_extended_2014_extracted.json").read_text())


def _materialize_open311(warehouse_url: str, records: list[dict]) -> dict:
    with ReplayServer() as server:
        server.add("/requests.json", json.dumps(records).encode())
        resources = {"postgres": PostgresResource(url=warehouse_url),
                     "open311": Open311Resource(base_url=server.url, timezone="America/Chicago")}
        result = materialize([raw_assets.open311_requests], resources=resources)
    return result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata


def test_open311_asset_is_incremental_with_a_kept_cursor(warehouse_url: str, conn) -> None:
    records = _chicago()
    first = _materialize_open311(warehouse_url, records)
    assert (first["rows_read"].value, first["rows_inserted"].value) == (50, 50)
    assert first["cursor"].value == "2015-10-10 10:15:40-05:00"
    assert scalar(conn, "select count(*) from raw.open311_requests") == 50

    # Nothing changed upstream: the kept cursor filters every record out.
    second = _materialize_open311(warehouse_url, records)
    assert (second["rows_read"].value, second["rows_inserted"].value, second["rows_updated"].value) == (0, 0, 0)

    # One request updated after the cursor: exactly that row changes.
    changed = dict(records[0], status="open", updated_datetime=datetime(2016, 1, 5, tzinfo=UTC).isoformat())
    third = _materialize_open311(warehouse_url, [changed, *records[1:]])
    assert (third["rows_read"].value, third["rows_updated"].value, third["rows_inserted"].value) == (1, 1, 0)
    assert scalar(conn, "select status from raw.open311_requests where service_request_id = %s",
                  records[0]["service_request_id"]) == "open"
    assert scalar(conn, "select count(*) from raw.open311_requests") == 50
    assert scalar(conn, "select cursor = '2016-01-05T00:00:00Z' from raw._cursors where source = 'open311_requests'")


def test_open311_asset_without_an_endpoint_creates_its_empty_table(warehouse_url: str, conn) -> None:
    result = materialize([raw_assets.open311_requests],
                         resources={"postgres": PostgresResource(url=warehouse_url), "open311": Open311Resource()})
    metadata = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert metadata["skipped"].value == "CIVICFLOW_OPEN311_URL is not set"
    assert scalar(conn, "select to_regclass('raw.open311_requests') is not null")


def test_open311_backfill_of_three_daily_partitions(warehouse_url: str, conn) -> None:
    from zoneinfo import ZoneInfo

    eastern = ZoneInfo("America/New_York")
    records = _chicago()
    requested = {r["service_request_id"]: datetime.fromisoformat(r["requested_datetime"]).astimezone(eastern)
                 for r in records}
    first_day = min(requested.values()).date()
    days = [first_day + timedelta(days=i) for i in range(3)]
    in_range = [r for r in records if requested[r["service_request_id"]].date() in days]
    assert in_range
    with ReplayServer() as server:
        # The server filters by start_date as a real GeoReport endpoint would; other windows are empty.
        server.add("/requests.json", json.dumps(in_range).encode(),
                   match=lambda q: q.get("start_date", "").startswith(days[0].isoformat()))
        server.add("/requests.json", b"[]")
        result = materialize(
            [raw_assets.open311_requests],
            resources={"postgres": PostgresResource(url=warehouse_url),
                       "open311": Open311Resource(base_url=server.url)},
            tags={"dagster/asset_partition_range_start": days[0].isoformat(),
                  "dagster/asset_partition_range_end": days[-1].isoformat()})
        windows = [q for path, q in server.requests if path == "/requests.json"]
    assert result.success
    materializations = result.get_asset_materialization_events()
    assert sorted(e.partition for e in materializations) == [d.isoformat() for d in days]
    metadata = materializations[0].event_specific_data.materialization.metadata
    assert metadata["rows_read"].value == len(in_range)
    assert {w["start_date"][:10] for w in windows} == {days[0].isoformat()}  # one window for the three days
    assert scalar(conn, "select count(*) from raw.open311_requests where service_request_id = any(%s)",
                  [r["service_request_id"] for r in in_range]) == len(in_range)
