"""What the data-quality and privacy checks cost: the end-to-end pipeline on 1,000,000 requests, without and with.

Both runs start from an empty database and materialize the same assets in process (raw files landed, the publish
policy, every dbt model and test, the publish models); the second adds the GX asset checks of every published
dataset (and the data docs, and quality.check_results). Each run is its own Python process, so the second pays
for importing great_expectations. The 1,000,000 requests are resampled from the real pothole export (as in
bench/ingest.py), beside the real sidewalk and odor exports and every other real Chattanooga and Boston file.
Target: the checks add at most 20% to the run.

    .civicflow/venv/bin/python bench/checks.py [--rows 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from civicflow_assets.database import ensure_database, recreate_database  # noqa: E402
from civicflow_assets.settings import DBT_PROJECT_DIR, load_settings  # noqa: E402

SHARED = Path(os.environ.get("CIVICFLOW_SHARED_DIR") or REPO.parent / "shared")
CHATTANOOGA = SHARED / "data" / "chattanooga"
POTHOLES = CHATTANOOGA / "311" / "potholes_distressed_pavement_2x73-xesh.csv"
BENCH_DB = "civicflow_bench_checks"


def fresh_database() -> str:
    return recreate_database(ensure_database(load_settings()), BENCH_DB)


def make_data(rows: int, folder: Path) -> Path:
    """The real Chattanooga folder with the pothole export replaced by `rows` resampled requests."""
    from civicflow_assets.demo_city import resample_requests

    data = folder / "chattanooga"
    shutil.copytree(CHATTANOOGA, data, ignore=shutil.ignore_patterns("potholes_distressed_pavement_*.csv"))
    resample_requests(POTHOLES, data / "311" / "potholes_distressed_pavement_bench.csv", rows)
    return data


def run_pipeline(url: str, data_dirs: list[str], with_checks: bool) -> dict:
    """Child process: materialize everything in process; wall time of the run and of the check steps."""
    from civicflow_assets.runtime import export_connection_env

    os.environ["CIVICFLOW_DATABASE_URL"] = url
    export_connection_env(url)
    started = time.perf_counter()
    from dagster import DagsterInstance, materialize

    from civicflow_assets import raw_assets
    from civicflow_assets.checks import build_checks, build_publish_policy_asset, load_check_settings, load_datasets
    from civicflow_assets.database import PostgresResource
    from civicflow_assets.dbt import DBT_ASSETS, dbt_resource
    from civicflow_assets.settings import load_settings
    from civicflow_assets.sources.mapping import load_mappings
    from civicflow_assets.sources.resources import CensusResource, Open311Resource, SourceFilesResource

    settings = load_check_settings()
    datasets = load_datasets(settings=settings)
    assets = [
        *raw_assets.file_assets(load_mappings(load_settings().mapping_dirs)),
        raw_assets.open311_requests,
        raw_assets.acs_tracts_api,
        build_publish_policy_asset(settings, datasets),
        *DBT_ASSETS,
    ]
    checks = build_checks(datasets, settings, docs_root=Path(tempfile.mkdtemp(prefix="civicflow-bench-docs-")))
    resources = {
        "postgres": PostgresResource(url=url),
        "source_files": SourceFilesResource(data_dirs=data_dirs),
        "open311": Open311Resource(),
        "census": CensusResource(),
        "dbt": dbt_resource(),
    }
    instance = DagsterInstance.ephemeral()
    result = materialize([*assets, *(checks if with_checks else [])], resources=resources, instance=instance,
                         raise_on_error=False)
    seconds = time.perf_counter() - started
    steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(result.run_id)}
    evaluations = result.get_asset_check_evaluations()
    failures = [f"{e.step_key}: {(e.event_specific_data.error.message if e.event_specific_data.error else '')[:300]}"
                for e in result.all_events if e.is_step_failure]
    return {
        "failures": failures,
        "success": result.success,
        "seconds": seconds,
        "check_steps_seconds": sum(s for k, s in steps.items() if k.endswith("_open_data_rules")),
        "dbt_seconds": sum(s for k, s in steps.items() if "dbt" in k),
        "steps": {k: round(s, 1) for k, s in steps.items()},
        "checks": len(evaluations),
        "failed_checks": sorted(f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations if not e.passed),
    }


def measure(url: str, data_dirs: list[str], with_checks: bool) -> dict:
    args = [sys.executable, __file__, "--child", "with" if with_checks else "without", "--url", url,
            "--data", json.dumps(data_dirs)]
    child = subprocess.run(args, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise SystemExit(child.stderr[-4000:])
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(run_pipeline(args.url, json.loads(args.data), args.child == "with")))
        return
    # dagster-dbt reads target/manifest.json at import: make sure it has every model, the publish ones included.
    subprocess.run([str(Path(sys.executable).with_name("dbt")), "parse", "--quiet", "--project-dir",
                    str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)], check=True)
    with tempfile.TemporaryDirectory(prefix="civicflow-bench-checks-") as folder:
        started = time.perf_counter()
        data = make_data(args.rows, Path(folder))
        print(f"input: {args.rows:,} requests resampled from the real pothole export, with every other real"
              f" Chattanooga and Boston file; made in {time.perf_counter() - started:.1f}s")
        data_dirs = [str(data), str(SHARED / "data" / "boston")]
        runs: dict[str, list[dict]] = {"without": [], "with": []}
        for _ in range(args.repeat):
            for mode in ("without", "with"):
                url = fresh_database()
                run = measure(url, data_dirs, mode == "with")
                runs[mode].append(run)
                print(f"{mode:8s} checks: {run['seconds']:6.1f} s (dbt {run['dbt_seconds']:.1f} s,"
                      f" check steps {run['check_steps_seconds']:.1f} s, {run['checks']} checks,"
                      f" failed: {', '.join(run['failed_checks']) or 'none'}; run success: {run['success']})")
                for failure in run["failures"]:
                    print(f"         step failed: {failure}")
    without = min(r["seconds"] for r in runs["without"])
    with_checks = min(r["seconds"] for r in runs["with"])
    print(f"with / without (fastest runs) = {with_checks / without:.3f}"
          f" ({100 * (with_checks / without - 1):+.1f}%, target <= +20%)")
    # On a shared machine the rest of the pipeline varies more from run to run than the checks cost; within one
    # run, the check steps against the rest of that same run is the steadier figure.
    for run in runs["with"]:
        rest = run["seconds"] - run["check_steps_seconds"]
        print(f"within the run with checks: check steps {run['check_steps_seconds']:.1f} s / rest of the run"
              f" {rest:.1f} s = {100 * run['check_steps_seconds'] / rest:+.1f}%")


if __name__ == "__main__":
    main()
