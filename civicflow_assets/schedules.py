"""How the platform runs itself: the jobs, their schedules, and freshness checks on every asset (rule U1)."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import yaml
from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    SensorDefinition,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
    define_asset_job,
)

from civicflow_assets.settings import PACKAGE_DIR

FRESHNESS_FILE = PACKAGE_DIR / "freshness.yaml"
TIMEZONE = "America/New_York"
SERVICE_REQUEST_SOURCES = AssetSelection.assets(["raw", "open311_requests"], ["raw", "service_requests"])
# The scheduled jobs stop at the marts: the publication sensor publishes once their blocking checks passed,
# and the reports sensor regenerates the reports after it.
PUBLICATION = AssetSelection.groups("publication", "reports")

everything = define_asset_job("everything", selection=AssetSelection.all(),
                              description="The whole pipeline, raw extracts to marts, checks and CKAN.")
# The hourly job stops at the published requests. The marts that summarise them by month (service levels, equity)
# are rebuilt by the daily job, as every dataset is published daily (checks/datasets.yaml update_frequency):
# rebuilding them from a million requests every hour would be most of its cost.
REQUESTS = SERVICE_REQUEST_SOURCES.downstream() & AssetSelection.assets(["publish", "pub_service_requests"]).upstream()
service_requests_hourly = define_asset_job(
    "service_requests_hourly", selection=REQUESTS,
    description="311 since the Open311 cursor, and the requests' models up to the published requests.")
slow_sources_daily = define_asset_job(
    "slow_sources_daily",
    selection=(AssetSelection.groups("raw") - SERVICE_REQUEST_SOURCES).downstream() - PUBLICATION,
    description="Full refresh of census, budget and boundary sources, and everything built from them (the marts).")


def schedules(running: bool) -> list[ScheduleDefinition]:
    """Running from the start (the platform runs itself) unless CIVICFLOW_SCHEDULES=stopped, as in tests."""
    status = DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED
    return [
        ScheduleDefinition(job=service_requests_hourly, cron_schedule="5 * * * *", execution_timezone=TIMEZONE,
                           default_status=status),
        ScheduleDefinition(job=slow_sources_daily, cron_schedule="30 4 * * *", execution_timezone=TIMEZONE,
                           default_status=status),
    ]


def freshness_checks(asset_keys: Sequence[AssetKey], path: Path = FRESHNESS_FILE) -> list[AssetChecksDefinition]:
    """One last-update check per asset, grouped by target so each group is one checks definition."""
    config = yaml.safe_load(path.read_text())
    by_hours: dict[float, list[AssetKey]] = defaultdict(list)
    for key in asset_keys:
        by_hours[float(config["assets"].get(key.to_user_string(), config["default_hours"]))].append(key)
    return [check for hours, keys in sorted(by_hours.items())
            for check in build_last_update_freshness_checks(assets=keys, lower_bound_delta=timedelta(hours=hours))]


def freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    return build_sensor_for_freshness_checks(freshness_checks=checks, minimum_interval_seconds=600)
