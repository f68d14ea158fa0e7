"""Data quality and privacy: the open-data rules and the PII rules as GX suites run as Dagster asset checks.

    build_checks()                  one multi-asset check per published dataset (checks/datasets.yaml)
    build_publish_policy_asset()    raw/publish_policy: the settings the dbt publish models compile with
"""

from civicflow_assets.checks.asset_checks import build_checks
from civicflow_assets.checks.config import (
    CheckSettings,
    Dataset,
    load_check_settings,
    load_datasets,
)
from civicflow_assets.checks.policy import build_publish_policy_asset

__all__ = [
    "CheckSettings",
    "Dataset",
    "build_checks",
    "build_publish_policy_asset",
    "load_check_settings",
    "load_datasets",
]
