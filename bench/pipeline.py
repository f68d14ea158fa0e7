"""The whole pipeline, end to end, as the README's main command runs it, then the hourly incremental run.

  full         generate the demo city (1,000,000 requests by default), then the `everything` job on a database
               of its own: land every extract, dbt build (with its tests), the open-data checks, publication of
               every dataset to the local CKAN (DataStore, files, field maps, data.json)
  incremental  1% of the requests changed (completed an hour later) and 1% new ones in the extracts, then what
               the platform runs on its own: the hourly job (`service_requests_hourly`: land, the request models up
               to the published requests, checks; the monthly marts wait for the daily job), and the publication
               the publication sensor requests once the blocking checks passed (the DataStore delta; the files of
               the hourly 311 dataset wait for their daily refresh, publish/catalog.yaml files_refresh_hours).
               The daily job that rebuilds the marts runs after it, timed apart.

Each step's time comes from the run's own step statistics, so the slow ones are named. Targets: the full run under
5 minutes, the incremental run under 60 seconds. The local CKAN's datasets are the catalog's own: this publishes
the bench's data over whatever a previous run left there.

    .civicflow/venv/bin/python bench/pipeline.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from changes import complete_one_percent  # noqa: E402

from civicflow_assets.database import ensure_database, recreate_database  # noqa: E402
from civicflow_assets.settings import load_settings  # noqa: E402

BENCH_DB = "civicflow_bench_pipeline"
TARGETS = {"full": 300.0, "incremental": 60.0}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def change_requests(path: Path, seed: int = 11) -> tuple[int, int]:
    """1% of the rows completed an hour later (closed, if they were open) and 1% new rows with new numeric keys."""
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = csv.reader(handle)
    changed = complete_one_percent(header, rows, seed)
    rng = random.Random(seed)
    next_key = max(int(row[0]) for row in rows if row[0].isdigit()) + 1  # legacy keys look like 16-00121320
    new = [[str(next_key + i), *rng.choice(rows)[1:]] for i in range(len(rows) // 100)]
    with path.open("w", newline="", encoding="utf-8") as sink:
        csv.writer(sink, lineterminator="\n").writerows([header, *rows, *new])
    return changed, len(new)


def run(defs, instance, label: str, job: str, selection=None) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=selection, run_config=QUIET, raise_on_error=False)
    seconds = time.monotonic() - started
    if not result.success:
        sys.exit(f"{label} failed: run {result.run_id}")
    # Dagster's own per-step timings of the run.
    steps = {stats.step_key: (stats.end_time or 0.0) - (stats.start_time or 0.0)
             for stats in instance.get_run_step_stats(result.run_id)}
    print(f"  {label:28s} {seconds:7.1f} s")
    for step, took in sorted(steps.items(), key=lambda item: -item[1])[:6]:
        print(f"      {took:7.1f} s  {step}")
    return seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()

    url = recreate_database(ensure_database(load_settings()), BENCH_DB)
    work = Path(tempfile.mkdtemp(prefix="civicflow-bench-pipeline-"))
    os.environ.update({"CIVICFLOW_DATABASE_URL": url, "CIVICFLOW_DATA_DIR": str(work / "demo"),
                       "CIVICFLOW_SCHEDULES": "stopped"})
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    try:
        from civicflow_assets.demo_city import generate_demo_city

        started = time.monotonic()
        generate_demo_city(work / "demo", requests=args.requests)
        generated = time.monotonic() - started
        print(f"  {'generate demo city':28s} {generated:7.1f} s  ({args.requests:,} requests)")

        from dagster import DagsterInstance, RunRequest, build_sensor_context

        from civicflow_assets.definitions import defs

        with DagsterInstance.ephemeral() as instance:
            everything, _ = run(defs, instance, "everything job", "everything")
            full = generated + everything

            changed = new = 0
            for path in sorted((work / "demo" / "311").glob("*.csv")):
                c, n = change_requests(path)
                changed, new = changed + c, new + n
            print(f"incremental: {changed:,} requests changed, {new:,} new")
            # The publication sensor's cursor as the `everything` job left it: that job published everything.
            sensor = defs.get_sensor_def("publication_sensor")
            published = build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
            sensor(published)
            hourly, _ = run(defs, instance, "service_requests_hourly", "service_requests_hourly")
            request = sensor(build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                                  cursor=published.cursor))
            if not isinstance(request, RunRequest):
                sys.exit(f"the publication sensor requested nothing: {request}")
            publication, _ = run(defs, instance, "publication", "everything", selection=request.asset_selection)
            incremental = hourly + publication
            # Not part of the hourly run: where the monthly marts catch up with the changed requests.
            run(defs, instance, "slow_sources_daily (marts)", "slow_sources_daily")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(f"full run         {full:7.1f} s   target {TARGETS['full']:.0f} s: "
              f"{'met' if full <= TARGETS['full'] else 'NOT met'}")
        print(f"incremental run  {incremental:7.1f} s   target {TARGETS['incremental']:.0f} s: "
              f"{'met' if incremental <= TARGETS['incremental'] else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
