"""The Dagster side of publication: the sensor asks for a run only when the table was rebuilt and every blocking
check passed, a failed blocking check keeps the dataset out of CKAN (sensor, schedule and asset alike), and the
publication assets wire into the project's Definitions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from ckanapi import NotFound
from dagster import (
    AssetCheckResult,
    AssetKey,
    AssetSelection,
    Definitions,
    MaterializeResult,
    RunRequest,
    SkipReason,
    asset,
    asset_check,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from civicflow_assets.database import PostgresResource
from civicflow_assets.publish import build_publication
from civicflow_assets.publish.assets import op_name, publication_key
from civicflow_assets.publish.dcat import validation_errors
from civicflow_assets.publish.gate import evaluate_gate
from civicflow_assets.publish.resources import CkanResource
from tests.test_publish_fixtures import catalog_of, make_requests_table, managed_resources, requests_spec

pytest_plugins = ["tests.test_publish_fixtures"]

TABLE = "requests_gate"
UPSTREAM = AssetKey(["fixture", TABLE])
CHECK_PASSES = {"value": False}


@asset(key=UPSTREAM, group_name="fixture")
def requests_gate() -> MaterializeResult:
    return MaterializeResult(metadata={"note": "the table is made by the test"})


@asset_check(asset=UPSTREAM, blocking=True, name="no_personal_data",
             description="PII1: no personal data (controlled by the test)")
def no_personal_data() -> AssetCheckResult:
    passed = CHECK_PASSES["value"]
    return AssetCheckResult(passed=passed, description=None if passed else
                            f"{TABLE}: PII1 failed for 3 value(s) in Description (3)")


@pytest.fixture(scope="module")
def setup(warehouse_url, ckan, organization, datastore_url, unique_ckan_name) -> Iterator[dict[str, Any]]:
    with psycopg2.connect(warehouse_url) as conn:
        make_requests_table(conn, TABLE, every=17)
    spec = requests_spec(TABLE, unique_ckan_name("cf-gated"), upstream=(tuple(UPSTREAM.path),))
    catalog = catalog_of(organization, spec, ckan_name=unique_ckan_name("cf-datajson"))
    publication = build_publication(catalog, ckan=CkanResource(url=ckan.address, api_token=ckan.apikey,
                                                               datastore_write_url=datastore_url or ""))
    defs = Definitions(assets=[requests_gate, *publication.assets], asset_checks=[no_personal_data],
                       sensors=publication.sensors, schedules=publication.schedules,
                       resources={"postgres": PostgresResource(url=warehouse_url), **publication.resources})
    with instance_for_test() as instance:  # persistent: schedules need an instance they can reopen
        yield {"spec": spec, "catalog": catalog, "defs": defs, "instance": instance,
               "repository": defs.get_repository_def(), "job": defs.resolve_implicit_global_asset_job_def()}


def rebuild_table(setup: dict[str, Any], passes: bool) -> None:
    CHECK_PASSES["value"] = passes
    result = setup["job"].execute_in_process(instance=setup["instance"], asset_selection=[UPSTREAM],
                                             raise_on_error=False)
    assert result.success is passes  # a failed blocking check fails its run


def sensor_says(setup: dict[str, Any]) -> RunRequest | SkipReason:
    sensor = setup["defs"].resolve_sensor_def("publication_sensor")
    context = build_sensor_context(instance=setup["instance"], repository_def=setup["repository"],
                                   cursor=setup.get("cursor"))
    answer = sensor.evaluate_tick(context)
    setup["cursor"] = answer.cursor
    return answer.run_requests[0] if answer.run_requests else SkipReason(answer.skip_message or "")


def test_a_failed_blocking_check_keeps_the_dataset_out(setup, ckan) -> None:
    spec = setup["spec"]
    rebuild_table(setup, passes=False)

    gate = evaluate_gate(setup["instance"], setup["repository"].asset_graph, spec)
    assert not gate.publishable and not gate.waiting
    assert "blocking check fixture/requests_gate:no_personal_data failed" in gate.reason
    assert "PII1 failed for 3 value(s) in Description" in gate.reason

    said = sensor_says(setup)
    assert isinstance(said, SkipReason) and "held back: requests_gate" in said.skip_message
    assert isinstance(sensor_says(setup), SkipReason)  # logged once per materialization, then quiet

    schedule = setup["defs"].resolve_schedule_def("publication_daily")
    answer = schedule.evaluate_tick(build_schedule_context(instance=setup["instance"],
                                                           repository_def=setup["repository"]))
    assert not answer.run_requests and "no dataset passes" in (answer.skip_message or "")

    # Even a run started by hand refuses, and says why.
    run = setup["job"].execute_in_process(instance=setup["instance"], raise_on_error=False,
                                          asset_selection=[publication_key(spec.name)])
    assert not run.success
    failure = next(e for e in run.all_events if e.event_type_value == "STEP_FAILURE")
    assert "requests_gate is not published: blocking check" in str(failure.event_specific_data.error)
    with pytest.raises(NotFound):
        ckan.action.package_show(id=spec.ckan_name)


def test_a_rebuilt_table_whose_checks_pass_is_published_once(setup, ckan) -> None:
    spec = setup["spec"]
    rebuild_table(setup, passes=True)

    said = sensor_says(setup)
    assert isinstance(said, RunRequest)
    assert set(said.asset_selection) == {publication_key(spec.name), AssetKey(["ckan", "data_json"])}
    assert isinstance(sensor_says(setup), SkipReason)  # the same materialization is not published twice

    run = setup["job"].execute_in_process(instance=setup["instance"], asset_selection=said.asset_selection)
    assert run.success
    materialization = next(e for e in run.get_asset_materialization_events()
                           if e.asset_key == publication_key(spec.name)).materialization
    assert materialization.metadata["rows_inserted"].value > 1_000
    assert "1 checks: 1 passed" in materialization.metadata["check_summary"].value

    resources = managed_resources(ckan, spec.ckan_name)
    assert {"datastore", "csv", "json", "geojson", "kml", "shapefile", "ods", "xlsx", "field_map"} <= set(resources)
    package = ckan.action.package_show(id=spec.ckan_name)
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras["check_summary"].startswith("1 checks: 1 passed")

    catalog = ckan.action.package_show(id=setup["catalog"].catalog.ckan_name)
    data_json = next(r for r in catalog["resources"] if r.get("civicflow_role") == "data_json")
    import requests

    document = requests.get(data_json["url"], timeout=60).json()
    assert validation_errors(document) == []
    assert [d["title"] for d in document["dataset"]] == [spec.title]

    schedule = setup["defs"].resolve_schedule_def("publication_daily")
    answer = schedule.evaluate_tick(build_schedule_context(instance=setup["instance"],
                                                           repository_def=setup["repository"]))
    request = answer.run_requests[0]
    assert request.run_config["ops"][op_name(spec.name)]["config"]["full_compare"] is True
    again = setup["job"].execute_in_process(instance=setup["instance"], asset_selection=request.asset_selection,
                                            run_config=request.run_config)
    assert again.success
    rerun = next(e for e in again.get_asset_materialization_events()
                 if e.asset_key == publication_key(spec.name)).materialization
    assert rerun.metadata["resources_sent"].value == "none"


def test_the_catalog_wires_into_the_project_definitions(warehouse_url) -> None:
    from civicflow_assets.definitions import defs as project
    from civicflow_assets.definitions import publication

    graph = project.resolve_asset_graph()
    for name, spec in publication.catalog.datasets.items():
        node = graph.get(publication_key(name))
        assert {AssetKey(list(k)) for k in spec.upstream_keys} <= node.parent_keys
    assert project.resolve_sensor_def("publication_sensor") and project.resolve_schedule_def("publication_daily")
    everything = project.resolve_job_def("everything").asset_layer.executable_asset_keys
    assert {publication_key(name) for name in publication.catalog.datasets} <= everything


def test_a_table_rebuilt_before_its_blocking_check_ran_waits_for_it(setup) -> None:
    CHECK_PASSES["value"] = True
    assert materialize([requests_gate], instance=setup["instance"]).success  # the check is not in this run
    gate = evaluate_gate(setup["instance"], setup["repository"].asset_graph, setup["spec"])
    assert gate.waiting and not gate.publishable
    assert "has not run on the latest materialization yet" in gate.reason
    before = setup["cursor"]
    assert isinstance(sensor_says(setup), SkipReason)
    assert setup["cursor"] == before  # not given up on: asked again next tick

    assert materialize([requests_gate, no_personal_data], instance=setup["instance"],
                       selection=AssetSelection.checks(no_personal_data)).success
    assert isinstance(sensor_says(setup), RunRequest)
