"""The platform runs itself: jobs and schedules exist, and a late source is flagged (rule U1)."""

from __future__ import annotations

import time

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    evaluate_automation_conditions,
    materialize,
)

from civicflow_assets import raw_assets
from civicflow_assets.database import PostgresResource
from civicflow_assets.schedules import freshness_checks
from civicflow_assets.sources.mapping import load_mappings
from civicflow_assets.sources.resources import SourceFilesResource
from tests.shared_data import shared


def test_jobs_schedules_and_a_freshness_check_on_every_asset(warehouse_url: str) -> None:
    from civicflow_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys if key.name == "freshness_check"}
    assert checked == {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert {s.name for s in defs.schedules} == {
        "service_requests_hourly_schedule", "slow_sources_daily_schedule", "publication_daily"}
    hourly = defs.resolve_job_def("service_requests_hourly").asset_layer.executable_asset_keys
    assert AssetKey(["raw", "open311_requests"]) in hourly
    assert AssetKey(["staging", "stg_city311__service_requests"]) in hourly
    assert AssetKey(["raw", "operating_budget"]) not in hourly
    assert AssetKey(["ckan", "service_requests"]) not in hourly  # the publication sensor publishes
    assert AssetKey(["publish", "pub_service_requests"]) in hourly
    monthly = AssetKey(["marts", "service_levels"])
    assert monthly not in hourly
    assert monthly in defs.resolve_job_def("slow_sources_daily").asset_layer.executable_asset_keys


def test_a_stale_source_is_flagged(warehouse_url: str, tmp_path) -> None:
    (tmp_path / "freshness.yaml").write_text("default_hours: 24\nassets:\n  raw/fire_stations: 0.0005\n")
    mappings = {n: m for n, m in load_mappings([raw_assets.PACKAGE_DIR / "sources" / "mappings"]).items()
                if m.target in ("fire_stations", "youth_centers")}
    fire_stations, youth_centers = raw_assets.file_assets(mappings)
    keys = [AssetKey(["raw", "fire_stations"]), AssetKey(["raw", "youth_centers"])]
    checks = freshness_checks(keys, tmp_path / "freshness.yaml")
    resources = {"postgres": PostgresResource(url=warehouse_url),
                 "source_files": SourceFilesResource(data_dirs=[str(shared("data", "chattanooga"))])}
    with DagsterInstance.ephemeral() as instance:
        materialize([fire_stations, youth_centers], resources=resources, instance=instance)
        time.sleep(2.5)  # past the 1.8 s allowed for fire stations, well within youth centers' 24 h
        result = materialize([fire_stations, youth_centers, *checks], resources=resources, instance=instance,
                             selection=AssetSelection.checks(*[k for c in checks for k in c.check_keys]))
    outcome = {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}
    assert outcome == {"raw/fire_stations": False, "raw/youth_centers": True}


def test_reports_run_again_when_a_publication_changes(warehouse_url: str) -> None:
    from civicflow_assets.definitions import defs

    reports = AssetSelection.groups("reports")
    keys = {AssetKey(["reports", n]) for n in ("transparency_index", "scorecards", "transparency_report")}

    def requested(result) -> set[AssetKey]:
        return {k for k in keys if result.get_num_requested(k)}

    with DagsterInstance.ephemeral() as instance:
        cursor = evaluate_automation_conditions(defs, instance, asset_selection=reports).cursor
        for round_ in range(2):
            instance.report_runless_asset_event(AssetMaterialization(AssetKey(["ckan", "service_requests"])))
            result = evaluate_automation_conditions(defs, instance, asset_selection=reports, cursor=cursor)
            assert requested(result) == keys, round_  # the report too: it reads the index requested with it
            for key in keys:
                instance.report_runless_asset_event(AssetMaterialization(key))
            quiet = evaluate_automation_conditions(defs, instance, asset_selection=reports, cursor=result.cursor)
            assert quiet.total_requested == 0, round_
            cursor = quiet.cursor
    assert {s.name for s in defs.sensors} >= {"reports_automation", "publication_sensor"}
