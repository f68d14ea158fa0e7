"""Everything the reports add to the Definitions, in one call:

    reports = build_reports(publication.catalog)
    Definitions(assets=[..., *reports.assets], sensors=[..., *reports.sensors])

They need the `postgres` and `ckan` resources that the Definitions already have (the latter from publication).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, AssetsDefinition, DefaultSensorStatus, SensorDefinition

from civicflow_assets.publish.assets import DATA_JSON, KEY_PREFIX, publication_key
from civicflow_assets.publish.catalog import Catalog, load_catalog
from civicflow_assets.reports.assets import (
    index_asset,
    report_asset,
    reports_automation,
    scorecards_asset,
)
from civicflow_assets.reports.config import ReportsConfig, load_reports_config
from civicflow_assets.reports.index import Method, load_method


@dataclass
class ReportsDefinitions:
    config: ReportsConfig
    assets: list[AssetsDefinition]
    sensors: list[SensorDefinition]


def build_reports(catalog: Catalog | None = None, config: ReportsConfig | None = None, method: Method | None = None,
                  running: bool = True) -> ReportsDefinitions:
    """The report assets after every publication of the catalog, and the sensor that evaluates their automation
    conditions (running unless CIVICFLOW_SCHEDULES=stopped, as in tests)."""
    catalog = catalog or load_catalog()
    config = config or load_reports_config()
    method = method or load_method()
    publications = [publication_key(name) for name in catalog.datasets]
    upstream = [*publications, AssetKey([KEY_PREFIX, DATA_JSON])]
    status = DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED
    return ReportsDefinitions(
        config=config,
        assets=[index_asset(config, catalog, method, upstream), scorecards_asset(config, catalog, upstream),
                report_asset(config, catalog)],
        sensors=[reports_automation(default_status=status)],
    )
