"""Scale-out on one machine: the multiprocess executor runs each step in a process of its own, on a persistent
instance configured by the repo's dagster.yaml (runs and events in PostgreSQL, the run queue's limits)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    define_asset_job,
    execute_job,
    reconstructable,
)
from dagster._core.run_coordinator import QueuedRunCoordinator

from civicflow_assets import raw_assets
from civicflow_assets.database import PostgresResource, recreate_database
from civicflow_assets.execution import civicflow_executor
from civicflow_assets.settings import REPO_ROOT
from civicflow_assets.sources.mapping import load_mappings
from civicflow_assets.sources.resources import SourceFilesResource
from tests.conftest import TEST_DATABASE, scalar
from tests.shared_data import shared

JOB = "scale_out_raw"
TABLES = ("fire_stations", "youth_centers")


def scale_out_job() -> JobDefinition:
    """Two real raw assets; every step process rebuilds this from the module, its warehouse from the environment."""
    mappings = {n: m for n, m in load_mappings([raw_assets.PACKAGE_DIR / "sources" / "mappings"]).items()
                if m.target in TABLES}
    defs = Definitions(
        assets=raw_assets.file_assets(mappings),
        jobs=[define_asset_job(JOB)],
        executor=civicflow_executor(max_concurrent=2),
        resources={"postgres": PostgresResource(url=os.environ["CIVICFLOW_DATABASE_URL"]),
                   "source_files": SourceFilesResource(data_dirs=[str(shared("data", "chattanooga"))])},
    )
    return defs.resolve_job_def(JOB)


def _drop_database(url: str) -> None:
    admin = psycopg2.connect(urlunparse(urlparse(url)._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'drop database if exists "{urlparse(url).path.lstrip("/")}" with (force)')
    admin.close()


@pytest.fixture
def instance(warehouse_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """DAGSTER_HOME in tmp_path with the repo's dagster.yaml, its storage a fresh PostgreSQL database."""
    storage = recreate_database(warehouse_url, f"{TEST_DATABASE}_dagster")
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("CIVICFLOW_DAGSTER_PG_URL", storage.replace("postgresql://", "postgresql+psycopg2://", 1))
    with DagsterInstance.get() as instance:
        yield instance
    _drop_database(storage)


def test_multiprocess_executor_runs_each_step_in_its_own_process(instance: DagsterInstance, conn) -> None:
    with execute_job(reconstructable(scale_out_job), instance=instance) as result:
        assert result.success
        pids = {event.step_key: event.pid for event in result.all_events
                if event.event_type == DagsterEventType.STEP_START}
    assert set(pids) == {f"raw__{table}" for table in TABLES}
    assert len(set(pids.values())) == len(TABLES)  # one process per step...
    assert os.getpid() not in pids.values()  # ...neither of them this one
    assert instance.get_run_by_id(result.run_id).is_success  # the run is in the PostgreSQL run storage
    for table in TABLES:
        assert scalar(conn, f"select count(*) from raw.{table}") > 0


def test_dagster_yaml_queues_runs_with_limits(instance: DagsterInstance) -> None:
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 4
    limits = {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits}
    assert limits == {"dagster/schedule_name": 1, "civicflow/trigger": 1, "dagster/backfill": 1}
