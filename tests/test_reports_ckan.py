"""After a pipeline run on the real data (raw files -> dbt -> checks -> publication -> reports, in one Dagster
run), the report pages, their figures, the scorecards and the transparency index are on the real CKAN, read back
with ckanapi; and the index on CKAN falls by the documented weight when a field map goes missing or a dataset goes
stale. Published under names of their own (a test organization), beside whatever the portal already holds."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests
from ckanapi import RemoteCKAN
from dagster import AssetKey, materialize

from civicflow_assets.database import PostgresResource
from civicflow_assets.publish import build_publication
from civicflow_assets.publish.catalog import Catalog, CatalogDataset, Organization, load_catalog
from civicflow_assets.publish.resources import CkanResource
from civicflow_assets.reports import build_reports
from civicflow_assets.reports.assets import INDEX_KEY
from civicflow_assets.reports.config import load_reports_config
from civicflow_assets.reports.index import load_method
from civicflow_assets.settings import DBT_PROJECT_DIR
from tests.conftest import scalar
from tests.shared_data import shared
from tests.test_publish_fixtures import datastore_rows, managed_resources

pytest_plugins = ["tests.test_publish_fixtures"]

# Small enough to publish in seconds, and between them every kind of report input: a service-level aggregate, the
# tracts with their geometry, and the budget.
DATASETS = ("service_levels", "demographic_equity", "budget_variance")
METHOD = load_method()


@pytest.fixture(scope="module")
def pipeline(warehouse_url: str, ckan: RemoteCKAN, organization: Organization, datastore_url: str | None,
             unique_ckan_name, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # dagster-dbt reads target/manifest.json at import: parse, so that it has every model.
    subprocess.run([str(Path(sys.executable).with_name("dbt")), "parse", "--quiet", "--project-dir",
                    str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)], check=True)

    from civicflow_assets import raw_assets
    from civicflow_assets.checks import build_checks, build_publish_policy_asset, load_check_settings, load_datasets
    from civicflow_assets.dbt import DBT_ASSETS, dbt_resource
    from civicflow_assets.settings import load_settings
    from civicflow_assets.sources.mapping import load_mappings
    from civicflow_assets.sources.resources import CensusResource, Open311Resource, SourceFilesResource

    real = load_catalog()
    catalog = Catalog(organization, {name: dataclasses.replace(real.datasets[name], ckan_name=unique_ckan_name(
        real.datasets[name].ckan_name[:40])) for name in DATASETS},
                      CatalogDataset(unique_ckan_name("cf-datajson"), "Reports test catalog", "data.json"),
                      real.defaults)
    ckan_resource = CkanResource(url=ckan.address, api_token=ckan.apikey, datastore_write_url=datastore_url or "")
    publication = build_publication(catalog, ckan=ckan_resource, running=False)
    config = load_reports_config().renamed(unique_ckan_name("cf"))
    reports = build_reports(catalog, config, running=False)
    settings = load_check_settings()
    datasets = load_datasets(settings=settings)
    resources = {
        "postgres": PostgresResource(url=warehouse_url), **publication.resources,
        "source_files": SourceFilesResource(data_dirs=[str(shared("data", "chattanooga")),
                                                       str(shared("data", "boston"))]),
        "open311": Open311Resource(), "census": CensusResource(),
        "dbt": dbt_resource(),
    }
    result = materialize(
        [*raw_assets.file_assets(load_mappings(load_settings().mapping_dirs)), raw_assets.open311_requests,
         raw_assets.acs_tracts_api, build_publish_policy_asset(settings, datasets), *DBT_ASSETS,
         *publication.assets, *reports.assets,
         *build_checks({name: datasets[name] for name in DATASETS}, settings, tmp_path_factory.mktemp("docs"))],
        resources=resources, raise_on_error=False)
    return {"result": result, "catalog": catalog, "config": config, "reports": reports, "resources": resources}


def index_on_ckan(ckan: RemoteCKAN, ckan_name: str) -> dict[str, dict[str, Any]]:
    resource = managed_resources(ckan, ckan_name)["datastore"][0]
    return {row["Dataset"]: row for row in datastore_rows(ckan, resource["id"], "RowKey")}


def test_the_run_publishes_the_report_pages(pipeline, ckan: RemoteCKAN, conn) -> None:
    result = pipeline["result"]
    failures = [str(e.event_specific_data.error.message)[:300] for e in result.all_events
                if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {INDEX_KEY, AssetKey(["reports", "scorecards"]), AssetKey(["reports", "transparency_report"])} \
        <= materialized

    name = pipeline["config"].output("report").ckan_name
    package = ckan.action.package_show(id=name)
    assert package["organization"]["name"] == pipeline["catalog"].organization.name
    roles = {r["civicflow_role"]: r for r in package["resources"] if r.get("civicflow_role")}
    for year in (2025, 2024, 2023):
        assert {f"report_fy{year}_html", f"report_fy{year}_pdf"} <= set(roles)
    views = {role for role in roles if role.startswith("view_")}
    assert views == {"view_requests-by-month", "view_time-to-close-by-month", "view_on-time-by-month",
                     "view_backlog-by-month", "view_requests-per-1000-map", "view_median-delay-map",
                     "view_delay-by-income-quintile", "view_budget-by-department"}
    assert {"datastore", "csv", "json", "ods", "xlsx", "field_map"} <= set(roles)

    # What a citizen gets from the dataset page: the report opens as a web page with the marts' figures.
    page = requests.get(roles["report_fy2024_html"]["url"], timeout=60)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Chattanooga Transparency Report, FY2024" in page.text
    opened = re.search(r'data-kpi="RequestsOpened" data-value="(\d+)"', page.text).group(1)
    assert int(opened) == scalar(conn, 'select sum("RequestsOpened") from marts.service_levels'
                                       " where \"Month\" between '2023-07-01' and '2024-06-01'")
    view = requests.get(roles["view_median-delay-map"]["url"], timeout=60)
    assert view.headers["Content-Type"].startswith("text/html") and view.text.count("<svg") == 1
    document = requests.get(roles["report_fy2024_pdf"]["url"], timeout=60)
    assert document.headers["Content-Type"] == "application/pdf" and document.content.startswith(b"%PDF-")


def test_the_figures_and_scorecards_read_back_through_the_datastore(pipeline, ckan: RemoteCKAN, conn) -> None:
    config = pipeline["config"]
    figures = managed_resources(ckan, config.output("report").ckan_name)["datastore"][0]
    found = ckan.action.datastore_search(resource_id=figures["id"], filters={
        "FiscalYear": 2024, "Section": "service_levels", "Measure": "MedianHoursToClose"}, limit=100)["records"]
    citywide = next(r for r in found if r["Subject"] == "")
    median = scalar(conn, 'select percentile_cont(0.5) within group (order by "HoursToClose")'
                          ' from marts.fct_service_requests where "ClosedMonth" between %s and %s',
                    "2023-07-01", "2024-06-01")
    assert float(citywide["Value"]) == pytest.approx(median)
    assert ckan.action.datastore_search(resource_id=figures["id"], limit=0)["total"] == scalar(
        conn, "select count(*) from reports.report_figures")

    districts = managed_resources(ckan, config.output("district_scorecards").ckan_name)["datastore"][0]
    rows = ckan.action.datastore_search(resource_id=districts["id"], filters={"FiscalYear": 2024}, limit=20)
    assert sorted(int(r["CouncilDistrict"]) for r in rows["records"]) == list(range(1, 10))
    departments = managed_resources(ckan, config.output("department_scorecards").ckan_name)["datastore"][0]
    public_works = ckan.action.datastore_search(resource_id=departments["id"], filters={
        "FiscalYear": 2024, "Department": "Public Works"})["records"][0]
    assert "Potholes" in public_works["RequestTypes"] and float(public_works["Budgeted"]) > 0


def test_the_index_is_on_ckan_with_its_methodology(pipeline, ckan: RemoteCKAN) -> None:
    name = pipeline["config"].output("index").ckan_name
    rows = index_on_ckan(ckan, name)
    assert set(rows) == {*DATASETS, "portal"}
    for dataset in DATASETS:
        row = rows[dataset]
        # Published by this very run, with a field map, the conversion documented, every check passed.
        assert row["Freshness"] == METHOD.weight("freshness") and row["FieldMap"] == METHOD.weight("field_map")
        assert row["ChecksRun"] > 0 and row["ChecksPassed"] == row["ChecksRun"]
        assert float(row["Score"]) == pytest.approx(100)
    assert float(rows["portal"]["Score"]) == pytest.approx(100)
    resources = managed_resources(ckan, name)
    method = requests.get(resources["methodology_csv"][0]["url"], timeout=60).text
    assert "field_map,5," in method and "freshness,15," in method


def test_a_missing_field_map_and_a_stale_dataset_lower_the_index_by_their_weights(pipeline, ckan: RemoteCKAN,
                                                                                   warehouse_url: str) -> None:
    catalog: Catalog = pipeline["catalog"]
    index_name = pipeline["config"].output("index").ckan_name
    before = index_on_ckan(ckan, index_name)
    field_map = managed_resources(ckan, catalog.datasets["demographic_equity"].ckan_name)["field_map"][0]
    ckan.action.resource_delete(id=field_map["id"])
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:  # last published three days ago
        cur.execute("update publish.audit set published_at = published_at - interval '3 days'"
                    " where dataset = 'service_levels'")
    index = next(a for a in pipeline["reports"].assets if a.key == INDEX_KEY)
    resources = pipeline["resources"]
    assert materialize([index], resources={"postgres": resources["postgres"], "ckan": resources["ckan"]}).success

    after = index_on_ckan(ckan, index_name)

    def lost(dataset: str) -> float:
        return float(before[dataset]["Score"]) - float(after[dataset]["Score"])

    assert lost("demographic_equity") == pytest.approx(METHOD.weight("field_map"))
    assert lost("service_levels") == pytest.approx(METHOD.weight("freshness"))  # daily: a 36 h target
    assert lost("budget_variance") == pytest.approx(0)  # untouched
    assert lost("portal") == pytest.approx((METHOD.weight("field_map") + METHOD.weight("freshness")) / 3)
    assert after["demographic_equity"]["FieldMap"] == 0 and after["service_levels"]["Freshness"] == 0
