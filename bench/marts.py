"""dbt build of the intermediate models and marts on 1,000,000 service requests: full, then incremental after 1% of
the requests changed (three rounds, each changing other rows; the median is reported; each builds what the hourly
job builds, the models descending from the 311 sources); then the p95 latency of
ten typical analyst queries against the marts. The machine's load average is printed: builds are CPU-bound.

The requests are the real pothole export resampled to 1,000,000 rows with new unique keys
(civicflow_assets.demo_city.resample_requests), landed with the real boundaries, census and budget files into a
database of its own (civicflow_bench_marts, recreated on each run). Targets: full build under 2 minutes,
incremental build under 30 s, p95 query latency under 100 ms.

    .civicflow/venv/bin/python bench/marts.py [--rows 1000000] [--repeat 20] [--incremental-runs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg2  # noqa: E402
from changes import complete_one_percent  # noqa: E402

from civicflow_assets.database import connect, ensure_database, recreate_database  # noqa: E402
from civicflow_assets.landing import land_files, prepare_target  # noqa: E402
from civicflow_assets.settings import DBT_PROJECT_DIR, PACKAGE_DIR, load_settings  # noqa: E402
from civicflow_assets.sources.mapping import load_mappings  # noqa: E402

SHARED = Path(os.environ.get("CIVICFLOW_SHARED_DIR") or REPO.parent / "shared")
DATA_DIRS = [SHARED / "data" / "chattanooga", SHARED / "data" / "boston"]
POTHOLES = SHARED / "data" / "chattanooga" / "311" / "potholes_distressed_pavement_2x73-xesh.csv"
BENCH_DB = "civicflow_bench_marts"
MAPPINGS = load_mappings([PACKAGE_DIR / "sources" / "mappings"])
REQUEST_MAPPINGS = ("chattanooga_311_potholes", "chattanooga_311_requests")
DBT = str(Path(sys.executable).with_name("dbt"))
# Full: the marts and everything they are built from. Incremental: what the hourly job rebuilds after new 311
# data, i.e. the models of the marts' lineage that descend from a 311 source (boundaries, census and budget
# models wait for their own daily job).
FULL_SELECT = ["--select", "+path:models/marts", "--indirect-selection", "cautious"]
HOURLY_SELECT = ["--select", "source:city311+,+path:models/marts", "source:open311+,+path:models/marts",
                 "--indirect-selection", "cautious"]
TARGETS = {"full build": 120.0, "incremental build": 30.0, "p95 query": 0.100}

# Ten things analysts ask of the marts (counts by district and month, a tract's equity row, a department's
# variance, ...), run as the read-only analyst role.
QUERIES = {
    "opened by district x month, 2023": """
        select "CouncilDistrict", "Month", sum("RequestsOpened") from marts.service_levels
        where "Month" >= date '2023-01-01' and "Month" < date '2024-01-01' group by 1, 2 order by 1, 2""",
    "one district's potholes by month": """
        select "Month", "RequestsOpened", "MedianHoursToClose", "OnTimePct", "OpenBacklogAtMonthEnd"
        from marts.service_levels where "RequestType" = 'Potholes' and "CouncilDistrict" = '7'
        order by "Month" desc limit 24""",
    "requests by month in a district (fact)": """
        select "CreatedMonth", count(*) from marts.fct_service_requests
        where "CouncilDistrict" = '3' and "CreatedMonth" >= date '2023-01-01' group by 1 order by 1""",
    "open requests in a tract (fact)": """
        select count(*) from marts.fct_service_requests where "TractGeoid" = '47065012300' and "Status" = 'open'""",
    "a tract's service levels in 2024": """
        select * from marts.service_levels_by_tract
        where "TractGeoid" = '47065000600' and "Month" >= date '2024-01-01' order by "RequestType", "Month" """,
    "a tract's equity row": """
        select * from marts.demographic_equity where "TractGeoid" = '47065000400'""",
    "lowest-income quintile's equity rows": """
        select "TractGeoid", "Population", "RequestsPer1000Residents", "MedianDelayRatio"
        from marts.demographic_equity where "IncomeQuintile" = 1 order by "MedianDelayRatio" desc nulls last""",
    "a department's variance": """
        select * from marts.budget_variance
        where "City" = 'Chattanooga' and "Department" = 'Public Works' order by "FiscalYear" """,
    "tracts farthest from a fire station": """
        select "TractGeoid", "NearestFireStation", "NearestFireStationMetres", "SharePctWithin1kmOfFacility"
        from marts.service_coverage order by "NearestFireStationMetres" desc limit 10""",
    "requests in a map window this year (fact)": """
        select "RequestType", count(*) from marts.fct_service_requests
        where "GeneralizedLocation" && st_makeenvelope(-85.315, 35.040, -85.300, 35.050, 4326)
          and "CreatedMonth" >= date '2024-01-01' group by 1""",
}


def bench_url() -> str:
    return recreate_database(ensure_database(load_settings()), BENCH_DB)


def dbt_env(url: str) -> dict[str, str]:
    parsed = urlparse(url)
    return {**os.environ, "CIVICFLOW_PG_HOST": parsed.hostname or "127.0.0.1",
            "CIVICFLOW_PG_PORT": str(parsed.port or 5432), "CIVICFLOW_PG_USER": unquote(parsed.username or ""),
            "CIVICFLOW_PG_PASSWORD": unquote(parsed.password or ""), "CIVICFLOW_PG_DATABASE": BENCH_DB}


class DatabaseCpu:
    """CPU seconds used by the PostgreSQL processes serving one database (and their parallel workers), sampled
    from /proc: on a shared machine the wall time of a build says as much about the neighbours as about it."""

    def __init__(self, database: str, interval: float = 0.1):
        self.database, self.interval = database, interval
        self.seconds: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        backends: set[int] = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / self._tick
            if title.startswith("postgres: ") and f" {self.database} " in f"{title} ":
                backends.add(int(entry))
                self.seconds[int(entry)] = cpu
            elif title.startswith("postgres: parallel worker for PID "):
                leader = int(title.rsplit(" ", 1)[1])
                if leader in backends or leader in self.seconds:
                    self.seconds[int(entry)] = cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> DatabaseCpu:
        self._sample()
        self.baseline = dict(self.seconds)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def used(self) -> float:
        return sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in self.seconds.items())


def dbt_build(url: str, work: Path, label: str, select: list[str]) -> float:
    # One target folder for both builds, as a deployment keeps it: the second parses only what changed.
    command = [DBT, "build", *select, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
               str(DBT_PROJECT_DIR), "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with DatabaseCpu(BENCH_DB) as database_cpu:
        result = subprocess.run(command, env=dbt_env(url), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    dbt_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    print(f"    CPU: {database_cpu.used:.1f} s in PostgreSQL, {dbt_cpu:.1f} s in dbt; on {os.cpu_count()} idle CPUs"
          f" at least {(database_cpu.used + dbt_cpu) / (os.cpu_count() or 1):.1f} s of wall time")
    if result.returncode != 0:
        sys.exit(f"dbt build ({label}) failed:\n{result.stdout[-6000:]}")
    slowest = []
    for line in result.stdout.splitlines():
        if "[" in line and (" OK " in line or " PASS " in line) and line.rstrip().endswith("s]"):
            step = line.split(" of ", 1)[-1].split(" ", 1)[-1].split(" ..", 1)[0].strip()
            slowest.append((float(line.rsplit(" in ", 1)[-1].rstrip("s]")), step))
    for step_seconds, step in sorted(slowest, reverse=True)[:8]:
        print(f"    {step_seconds:6.2f} s  {step}")
    return seconds


def change_one_percent(source: Path, out: Path, seed: int = 5) -> int:
    """The same extract with 1% of its rows completed one hour later (or completed, when open)."""
    with source.open(newline="", encoding="utf-8") as handle:
        header, *rows = csv.reader(handle)
    changed = complete_one_percent(header, rows, seed)
    with out.open("w", newline="", encoding="utf-8") as sink:
        csv.writer(sink, lineterminator="\n").writerows([header, *rows])
    return changed


def query_latencies(url: str, repeat: int) -> dict[str, list[float]]:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    latencies: dict[str, list[float]] = {}
    with conn.cursor() as cur:
        cur.execute("set role civicflow_analyst")
        for name, query in QUERIES.items():
            cur.execute(query)  # warm the cache once, as an analyst's session would be
            cur.fetchall()
            timings = []
            for _ in range(repeat):
                started = time.perf_counter()
                cur.execute(query)
                cur.fetchall()
                timings.append(time.perf_counter() - started)
            latencies[name] = timings
    conn.close()
    return latencies


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each analyst query")
    parser.add_argument("--incremental-runs", type=int, default=3,
                        help="rounds of 1%% changes + incremental build (each round changes other rows)")
    args = parser.parse_args()
    from civicflow_assets.demo_city import resample_requests

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    url = bench_url()
    with tempfile.TemporaryDirectory(prefix="civicflow_bench_marts_") as folder:
        work = Path(folder)
        started = time.monotonic()
        with connect(url) as conn:
            for name, mapping in MAPPINGS.items():
                if mapping.format == "records" or name in REQUEST_MAPPINGS:
                    prepare_target(conn, mapping)
                else:
                    land_files(conn, mapping, mapping.find_files(DATA_DIRS))
        print(f"reference data landed (boundaries, census, budgets): {time.monotonic() - started:.1f} s")

        requests_csv = work / "potholes_distressed_pavement_bench.csv"
        started = time.monotonic()
        resample_requests(POTHOLES, requests_csv, args.rows)
        print(f"{args.rows:,} requests resampled from the real potholes: {time.monotonic() - started:.1f} s")
        potholes = MAPPINGS["chattanooga_311_potholes"]
        with connect(url) as conn:
            loaded = land_files(conn, potholes, [requests_csv])
        print(f"landed: {loaded.loaded:,} rows in {loaded.seconds:.1f} s")

        full = dbt_build(url, work, "full", FULL_SELECT)
        print(f"dbt build, full (first run, {args.rows:,} requests): {full:.1f} s")

        incremental_runs = []
        current = requests_csv
        for round_number in range(1, args.incremental_runs + 1):
            changed_csv = work / f"potholes_distressed_pavement_bench_changed_{round_number}.csv"
            changed = change_one_percent(current, changed_csv, seed=round_number)
            with connect(url) as conn:
                loaded = land_files(conn, potholes, [changed_csv])
            print(f"round {round_number}: {changed:,} rows changed in the extract, landing updated"
                  f" {loaded.updated:,} in {loaded.seconds:.1f} s")
            incremental_runs.append(dbt_build(url, work, "incremental", HOURLY_SELECT))
            print(f"round {round_number}: dbt build, incremental: {incremental_runs[-1]:.1f} s"
                  f" (load average {os.getloadavg()[0]:.2f})")
            if current != requests_csv:
                current.unlink()
            current = changed_csv
        incremental = sorted(incremental_runs)[len(incremental_runs) // 2]
        runs = ", ".join(f"{t:.1f}" for t in incremental_runs)
        print(f"dbt build, incremental (1% changed each round): {runs} s; median {incremental:.1f} s")

    latencies = query_latencies(url, args.repeat)
    every = [t for timings in latencies.values() for t in timings]
    print(f"\nanalyst queries ({len(QUERIES)} queries x {args.repeat} runs, as civicflow_analyst):")
    for name, timings in latencies.items():
        print(f"  {name:<42} median {1000 * sorted(timings)[len(timings) // 2]:7.1f} ms"
              f"   p95 {1000 * p95(timings):7.1f} ms")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    figures = {"full build": full, "incremental build": incremental, "p95 query": p95(every)}
    print("\nsummary:")
    for name, value in figures.items():
        shown = f"{1000 * value:.1f} ms" if name == "p95 query" else f"{value:.1f} s"
        limit = f"{1000 * TARGETS[name]:.0f} ms" if name == "p95 query" else f"{TARGETS[name]:.0f} s"
        print(f"  {name:<18} {shown:>10}   target < {limit:<7} {'ok' if value < TARGETS[name] else 'MISSED'}")


if __name__ == "__main__":
    main()
