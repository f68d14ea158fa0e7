"""dbt models as Dagster assets: sources map onto the raw assets, dbt tests become asset checks."""


import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from civicflow_assets.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# The dbt installed beside this interpreter, whether or not the venv is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

# dagster-dbt reads target/manifest.json at import; a fresh clone has none, so parse once.
if not dbt_project.manifest_path.exists():
    subprocess.run([DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
                    "--profiles-dir", str(DBT_PROJECT_DIR)], check=True)


class CivicFlowTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["config"].get("schema") or "analytics", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # The schema a node builds in is its layer: staging, intermediate, marts, publish, reference (seeds).
        return dbt_resource_props["config"].get("schema") or "analytics"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=CivicFlowTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
)
def civicflow_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    yield from dbt.cli(["build"], context=context).stream()
