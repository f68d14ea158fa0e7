"""The one Definitions object: what CivicFlow builds, and the resources it is built with."""

from __future__ import annotations

from dagster import Definitions

from civicflow_assets import raw_assets, schedules
from civicflow_assets.checks.asset_checks import build_checks
from civicflow_assets.checks.config import load_check_settings, load_datasets
from civicflow_assets.checks.policy import build_publish_policy_asset
from civicflow_assets.database import PostgresResource, ensure_database
from civicflow_assets.dbt import DBT_ASSETS, dbt_resource
from civicflow_assets.execution import civicflow_executor
from civicflow_assets.publish.definitions_part import build_publication
from civicflow_assets.publish.resources import CkanResource
from civicflow_assets.reports.definitions_part import build_reports
from civicflow_assets.runtime import export_connection_env
from civicflow_assets.settings import load_settings
from civicflow_assets.sources.mapping import load_mappings
from civicflow_assets.sources.resources import CensusResource, Open311Resource, SourceFilesResource

settings = load_settings()
database_url = ensure_database(settings)
export_connection_env(database_url)
check_settings = load_check_settings()
datasets = load_datasets(settings=check_settings)
publication = build_publication(
    running=settings.schedules_running, ckan=CkanResource(datastore_write_url=settings.ckan_datastore_url or ""))
reports = build_reports(publication.catalog, running=settings.schedules_running)

assets = [
    *raw_assets.file_assets(load_mappings(settings.mapping_dirs)),
    raw_assets.open311_requests,
    raw_assets.acs_tracts_api,
    build_publish_policy_asset(check_settings, datasets),
    *DBT_ASSETS,
    *publication.assets,
    *reports.assets,
]
freshness = schedules.freshness_checks([key for a in assets for key in a.keys])

defs = Definitions(
    assets=assets,
    asset_checks=[*freshness, *build_checks(datasets, check_settings)],
    jobs=[schedules.everything, schedules.service_requests_hourly, schedules.slow_sources_daily],
    schedules=[*schedules.schedules(running=settings.schedules_running), *publication.schedules],
    sensors=[schedules.freshness_sensor(freshness), *publication.sensors, *reports.sensors],
    executor=civicflow_executor(),
    resources={
        **publication.resources,
        "postgres": PostgresResource(url=database_url),
        "source_files": SourceFilesResource(data_dirs=[str(d) for d in settings.data_dirs]),
        "open311": Open311Resource(
            base_url=settings.open311_url, api_key=settings.open311_api_key,
            jurisdiction_id=settings.open311_jurisdiction, timezone=settings.timezone),
        "census": CensusResource(
            base_url=settings.census_api_url, api_key=settings.census_api_key,
            year=settings.census_year, geo_in=settings.census_geo_in),
        "dbt": dbt_resource(),
    },
)
