"""The publish policy: settings.yaml and datasets.yaml copied into raw.publish_policy for the dbt publish models.

dbt cannot read files, so the one settings file reaches the SQL through the warehouse: this asset writes the
policy as one JSON row, and the `publish_policy()` macro (dbt_project/macros/pii.sql) reads it when the
publish models compile. The row also says which files, with which hashes, the published data followed.
"""

from __future__ import annotations

import hashlib
import json

import psycopg2.extensions
from dagster import AssetsDefinition, MaterializeResult, asset

from civicflow_assets.checks.config import CheckSettings, Dataset
from civicflow_assets.database import PostgresResource

POLICY_TABLE = "raw.publish_policy"
# The shape of the policy document; the publish_policy() macro refuses any other (a stale row, a newer writer).
POLICY_VERSION = 2

POLICY_DDL = f"""
create schema if not exists raw;
create table if not exists {POLICY_TABLE} (
    policy jsonb not null,
    settings_file text not null,
    settings_sha256 text not null,
    loaded_at timestamptz not null default now()
)
"""


def policy_document(settings: CheckSettings, datasets: dict[str, Dataset]) -> dict:
    return {"version": POLICY_VERSION, **settings.as_policy(),
            "datasets": {name: d.as_policy() for name, d in datasets.items()}}


def write_policy(conn: psycopg2.extensions.connection, settings: CheckSettings, datasets: dict[str, Dataset]) -> dict:
    """Replace the policy row in one transaction: a publish model never sees an empty table."""
    document = policy_document(settings, datasets)
    with conn.cursor() as cur:
        cur.execute(POLICY_DDL)
        cur.execute(f"delete from {POLICY_TABLE}")
        cur.execute(f"insert into {POLICY_TABLE} (policy, settings_file, settings_sha256) values (%s, %s, %s)",
                    (json.dumps(document), str(settings.path), settings.sha256))
    conn.commit()
    return document


def build_publish_policy_asset(settings: CheckSettings, datasets: dict[str, Dataset]) -> AssetsDefinition:
    # A new code version whenever the policy changes: Dagster then shows the publish models as stale.
    version = hashlib.sha256(json.dumps(policy_document(settings, datasets), sort_keys=True).encode()).hexdigest()

    @asset(
        key=["raw", "publish_policy"],
        group_name="raw",
        kinds={"postgres"},
        description="raw.publish_policy: the privacy thresholds (checks/settings.yaml) and each dataset's "
                    "privacy fields (checks/datasets.yaml), read by the dbt publish models when they compile.",
        code_version=version[:12],
    )
    def publish_policy(postgres: PostgresResource) -> MaterializeResult:
        with postgres.connection() as conn:
            document = write_policy(conn, settings, datasets)
        return MaterializeResult(metadata={
            "settings_file": str(settings.path),
            "settings_sha256": settings.sha256,
            "small_cell_min": document["small_cell_min"],
            "coordinate_decimals": document["coordinate_decimals"],
            "sensitive_request_types": len(document["sensitive_request_types"]),
            "datasets": len(document["datasets"]),
        })

    return publish_policy
