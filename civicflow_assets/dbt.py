"""dbt models as Dagster assets: sources map onto the raw assets, dbt tests become asset checks."""


import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
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
from packaging import version

from civicflow_assets.partitions import ONE_RUN_PER_RANGE, REQUEST_DAYS
from civicflow_assets.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# The dbt installed beside this interpreter, whether or not the venv is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))


class LocalDbtCliResource(DbtCliResource):
    """dbt Core from this environment, started without two costs a dbt step pays in every step process (each step
    is a process of its own under the multiprocess executor), together 8 s on two cores:
    `dbt --version` in a subprocess (4-5 s) to learn the version of the package installed beside this interpreter,
    and a dbt adapter opened in this process (3 s), which only row-count and column-metadata fetching use, and no
    asset here fetches them."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_resource() -> DbtCliResource:
    return LocalDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """Whether target/manifest.json is missing or older than a file dbt parses (a fresh clone, a pull)."""
    if not manifest.is_file():
        return True
    written = manifest.stat().st_mtime
    parsed = [project_dir / "dbt_project.yml", *(f for folder in ("models", "macros", "seeds", "tests")
                                                 for f in (project_dir / folder).rglob("*") if f.is_file())]
    return any(f.stat().st_mtime > written for f in parsed)


def parse_if_stale() -> None:
    """dagster-dbt builds the dbt assets from target/manifest.json at import: parse first when the project changed
    since it was written, one process at a time (the webserver, the daemon and step processes import this)."""
    manifest = dbt_project.manifest_path
    if not manifest_is_stale(DBT_PROJECT_DIR, manifest):
        return
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with (manifest.parent / ".parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest_is_stale(DBT_PROJECT_DIR, manifest):
            subprocess.run([DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
                            "--profiles-dir", str(DBT_PROJECT_DIR)], check=True)


parse_if_stale()


class CivicFlowTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["config"].get("schema") or "analytics", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # The schema a node builds in is its layer: staging, intermediate, marts, publish, reference (seeds).
        return dbt_resource_props["config"].get("schema") or "analytics"


TRANSLATOR = CivicFlowTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
# Partitioned by the day requests were created: a backfill of a range of days re-derives exactly those requests.
DAILY_FACT = "fct_service_requests"
# A run builds the models before the fact, the fact, then the models after it (Dagster splits the unpartitioned
# models around the fact): a test runs with the step that builds the last of its models ("buildable"), not with the
# first (dbt's "eager" would test the fact against a boundary table before the fact exists).
BUILD = ["build", "--indirect-selection", "buildable"]
# Each dbt step leaves a run folder of about 12 MB under target/ (manifest, compiled SQL, logs): the hourly job alone
# would add 800 MB a day. Older ones go, but for the newest compiled SQL of each node (the field maps read it).
RUN_FOLDERS_KEPT_HOURS = 6.0


def _last_write(run: Path) -> float:
    """When a run folder was last written: its dbt.log grows for as long as its dbt runs."""
    log = run / "dbt.log"
    return max(run.stat().st_mtime, log.stat().st_mtime if log.is_file() else 0.0)


def prune_run_folders(target: Path, kept_hours: float = RUN_FOLDERS_KEPT_HOURS, now: float | None = None) -> list[Path]:
    """Delete the run folders dagster-dbt left in `target` (newest first: a folder is kept while it is younger
    than `kept_hours`, or compiled a node that no newer folder compiled); answers the deleted ones."""
    now = time.time() if now is None else now
    runs = sorted((p for p in target.iterdir() if (p / "manifest.json").is_file()), key=_last_write, reverse=True)
    compiled_by_newer: set[Path] = set()
    deleted = []
    for run in runs:
        compiled = {f.relative_to(run) for f in (run / "compiled").rglob("*.sql")}
        if compiled <= compiled_by_newer and now - _last_write(run) > kept_hours * 3600:
            shutil.rmtree(run, ignore_errors=True)
            deleted.append(run)
        compiled_by_newer |= compiled
    return deleted


def share_partial_parse(run_folder: Path, target: Path) -> None:
    """Make the partial-parse state a dbt step wrote the one the next step starts from. dagster-dbt copies
    target/partial_parse.msgpack into each run folder, but dbt parses everything again (5 s on two cores) when
    the profile's environment differs from the one it was written with: the warehouse a run uses is only
    known at run time, and `dbt parse` at import or in a shell may have seen another."""
    written = run_folder / "partial_parse.msgpack"
    if written.is_file():
        incoming = target / f".partial_parse.{run_folder.name}"
        shutil.copyfile(written, incoming)
        os.replace(incoming, target / "partial_parse.msgpack")


def _build(context: AssetExecutionContext, dbt: DbtCliResource, args: list[str]) -> Iterator[Any]:
    invocation = dbt.cli(args, context=context)
    yield from invocation.stream()
    target = dbt_project.project_dir / dbt_project.target_path
    share_partial_parse(invocation.target_path, target)
    prune_run_folders(target)


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=TRANSLATOR, exclude=DAILY_FACT)
def civicflow_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    yield from _build(context, dbt, BUILD)


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=TRANSLATOR, select=DAILY_FACT,
            partitions_def=REQUEST_DAYS, backfill_policy=ONE_RUN_PER_RANGE)
def service_request_facts(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """Unpartitioned runs (hourly, main job) merge what was modified since the last build; a partition or a range
    of them merges again the requests created on those days (the model's rebuild_from / rebuild_to vars)."""
    args = list(BUILD)
    if context.has_partition_key_range:
        window = context.partition_time_window
        args += ["--vars", json.dumps({"rebuild_from": window.start.isoformat(), "rebuild_to": window.end.isoformat()})]
    yield from _build(context, dbt, args)


DBT_ASSETS = (civicflow_dbt_models, service_request_facts)
