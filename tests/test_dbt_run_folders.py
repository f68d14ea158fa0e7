"""dbt's files under target/: a manifest parsed again when stale, run folders pruned, parse state shared."""

from __future__ import annotations

import os
from pathlib import Path

from civicflow_assets.dbt import manifest_is_stale, prune_run_folders, share_partial_parse

HOUR = 3600.0
NOW = 1_800_000_000.0


def _run(target: Path, name: str, hours_ago: float, compiled: list[str]) -> Path:
    run = target / name
    run.mkdir()
    for node in compiled:
        (run / "compiled" / "civicflow" / "models" / node).parent.mkdir(parents=True, exist_ok=True)
        (run / "compiled" / "civicflow" / "models" / node).write_text("select 1")
    (run / "manifest.json").write_text("{}")
    os.utime(run, (NOW - hours_ago * HOUR, NOW - hours_ago * HOUR))
    return run


def test_old_run_folders_go_but_the_newest_compiled_sql_of_each_node_stays(tmp_path: Path) -> None:
    hourly = ["staging/stg_city311__service_requests.sql", "marts/service_levels.sql"]
    daily = ["staging/stg_budget__operating.sql"]
    for hour in range(1, 30):
        _run(tmp_path, f"civicflow_dbt_models-{hour:03d}", hour, hourly)
    _run(tmp_path, "civicflow_dbt_models-daily", 20, daily)
    _run(tmp_path, "civicflow_dbt_models-daily-before", 44, daily)
    _run(tmp_path, "civicflow_dbt_models-failed", 40, [])  # a run that failed before compiling anything
    # Started 30 hours ago and still running: its folder's entries are old, its log is not.
    backfill = _run(tmp_path, "civicflow_dbt_models-backfill", 30, hourly)
    (backfill / "dbt.log").write_text("12 of 300 OK")
    os.utime(backfill / "dbt.log", (NOW - 60, NOW - 60))
    os.utime(backfill, (NOW - 30 * HOUR, NOW - 30 * HOUR))
    (tmp_path / "manifest.json").write_text("{}")  # dbt parse's own files stay where they are
    (tmp_path / "compiled").mkdir()

    deleted = prune_run_folders(tmp_path, kept_hours=6, now=NOW)

    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["civicflow_dbt_models-001", "civicflow_dbt_models-002", "civicflow_dbt_models-003",
                    "civicflow_dbt_models-004", "civicflow_dbt_models-005", "civicflow_dbt_models-006",
                    "civicflow_dbt_models-backfill", "civicflow_dbt_models-daily", "compiled", "manifest.json"]
    assert len(deleted) == 23 + 1 + 1
    assert prune_run_folders(tmp_path, kept_hours=6, now=NOW) == []


def test_a_run_folders_partial_parse_state_becomes_the_next_runs(tmp_path: Path) -> None:
    run = tmp_path / "civicflow_dbt_models-abc"
    run.mkdir()
    (run / "partial_parse.msgpack").write_bytes(b"written with this run's environment")
    (tmp_path / "partial_parse.msgpack").write_bytes(b"written by dbt parse elsewhere")
    share_partial_parse(run, tmp_path)
    assert (tmp_path / "partial_parse.msgpack").read_bytes() == b"written with this run's environment"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["civicflow_dbt_models-abc", "partial_parse.msgpack"]
    share_partial_parse(tmp_path / "a-run-that-failed-before-parsing", tmp_path)  # nothing to share: no change
    assert (tmp_path / "partial_parse.msgpack").read_bytes() == b"written with this run's environment"


def test_the_manifest_is_stale_when_a_parsed_file_changed_after_it(tmp_path: Path) -> None:
    (tmp_path / "models" / "marts").mkdir(parents=True)
    (tmp_path / "dbt_project.yml").write_text("name: civicflow")
    model = tmp_path / "models" / "marts" / "service_levels.sql"
    model.write_text("select 1")
    manifest = tmp_path / "target" / "manifest.json"
    assert manifest_is_stale(tmp_path, manifest)  # a fresh clone: none yet
    manifest.parent.mkdir()
    manifest.write_text("{}")
    os.utime(model, (NOW - HOUR, NOW - HOUR))
    os.utime(tmp_path / "dbt_project.yml", (NOW - HOUR, NOW - HOUR))
    os.utime(manifest, (NOW, NOW))
    assert not manifest_is_stale(tmp_path, manifest)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "dbt.log").write_text("a later run's log")  # dbt does not parse logs
    assert not manifest_is_stale(tmp_path, manifest)
    os.utime(model, (NOW + 1, NOW + 1))  # a pull changed a model
    assert manifest_is_stale(tmp_path, manifest)
