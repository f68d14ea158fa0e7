"""Everything publication adds to the Definitions, in one call:

    publication = build_publication()
    Definitions(assets=[..., *publication.assets], sensors=[..., *publication.sensors],
                schedules=[..., *publication.schedules], resources={..., **publication.resources})

It needs the `postgres` resource (the warehouse) that the Definitions already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ScheduleDefinition,
    SensorDefinition,
)

from civicflow_assets.publish.assets import data_json_asset, publication_asset, publication_key
from civicflow_assets.publish.catalog import CATALOG_PATH, Catalog, load_catalog
from civicflow_assets.publish.resources import CkanResource
from civicflow_assets.publish.sensors import build_publication_schedule, build_publication_sensor


@dataclass
class PublicationDefinitions:
    catalog: Catalog
    assets: list[AssetsDefinition]
    sensors: list[SensorDefinition]
    schedules: list[ScheduleDefinition]
    resources: dict[str, object] = field(default_factory=dict)


def build_publication(catalog: Catalog | None = None, catalog_path: Path = CATALOG_PATH,
                      ckan: CkanResource | None = None, running: bool = True) -> PublicationDefinitions:
    """Assets, sensor, schedule and the `ckan` resource for every dataset of the catalog. Building them starts
    nothing: the local CKAN starts on the first publication. `running`: the sensor and schedule start running
    (settings.schedules_running; CIVICFLOW_SCHEDULES=stopped in tests)."""
    catalog = catalog or load_catalog(catalog_path)
    sensor_status = DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED
    schedule_status = DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED
    datasets = [publication_asset(spec, catalog) for spec in catalog.datasets.values()]
    catalog_asset = data_json_asset(catalog, [publication_key(name) for name in catalog.datasets])
    return PublicationDefinitions(
        catalog=catalog,
        assets=[*datasets, catalog_asset],
        sensors=[build_publication_sensor(catalog, default_status=sensor_status)],
        schedules=[build_publication_schedule(catalog, default_status=schedule_status)],
        resources={"ckan": ckan or CkanResource()},
    )
