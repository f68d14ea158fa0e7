"""Landing 1,000,000 service requests four ways, side by side in one run.

  landing  CivicFlow's landing (COPY, typing in SQL, quarantine checks, merge, indexes)
  limit    psql \\copy into an unlogged text table, then the same typing in one CREATE TABLE AS (parallel workers):
           the landing's own land table and SELECT, row hash, key and quarantine checks included
  light    \\copy into a plain text table, then a hand-written typing of the same fields only (no row hash, key or
           checks): the limit this bench had before, kept to show what the landing's typing itself costs
  naive    pandas.read_csv + GeoSeries.from_wkt + GeoDataFrame.to_postgis (what a user would write)

Each method runs in its own process so that its peak RSS is its own (the PostgreSQL server's memory
is not counted for any of them). They run for a few rounds, each round into a database created afresh and
in another order, and the median of each is compared: a single run of a few seconds moves by 20% on a shared
machine. Targets: landing within 1.5x of the limit, at least 4x faster than naive, peak RSS under 400 MB.

    .civicflow/venv/bin/python bench/ingest.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402
from psycopg2 import sql  # noqa: E402

from civicflow_assets.settings import PACKAGE_DIR  # noqa: E402

if TYPE_CHECKING:
    from civicflow_assets.sources.mapping import Mapping

SHARED = Path(os.environ.get("CIVICFLOW_SHARED_DIR") or REPO.parent / "shared")
POTHOLES = SHARED / "data" / "chattanooga" / "311" / "potholes_distressed_pavement_2x73-xesh.csv"
BENCH_DB = "civicflow_bench"

LIMIT_SQL = """
\\set ON_ERROR_STOP on
create unlogged table bench_limit_text ({columns});
\\copy bench_limit_text ({copied}) from '{path}' with (format csv, header true)
set timezone = '{timezone}';
create table bench_limit_typed as {select};
"""

LIGHT_SQL = """
\\set ON_ERROR_STOP on
create table bench_light_text (service_request_key text, created_date text, request_type text, description text,
  request_type_code text, status_code text, intake_form text, days_to_complete text, sla_fy_2019 text,
  on_time_indicator text, completed_at text, due_at text, ispublic text, council_district text, loc text);
\\copy bench_light_text from '{path}' with (format csv, header true)
set timezone = 'America/New_York';
create table bench_light_typed as select
  service_request_key as service_request_id,
  to_timestamp(created_date, 'MM/DD/YYYY HH12:MI:SS AM') as created_at,
  to_timestamp(due_at, 'MM/DD/YYYY HH12:MI:SS AM') as due_at,
  to_timestamp(completed_at, 'MM/DD/YYYY HH12:MI:SS AM') as closed_at,
  request_type, request_type_code, description, status_code, intake_form as intake_channel,
  days_to_complete::numeric as days_to_complete, sla_fy_2019::numeric as sla_days, on_time_indicator,
  lower(ispublic) in ('yes', 'true') as is_public, council_district,
  st_geomfromtext(loc, 4326) as location
from bench_light_text;
"""


def bench_url() -> str:
    # Here and not at the top: the database helpers import Dagster (0.9 s), which a method's process must not pay.
    from civicflow_assets.database import ensure_database, recreate_database
    from civicflow_assets.settings import load_settings

    return recreate_database(ensure_database(load_settings()), BENCH_DB)


def make_input(rows: int, folder: Path) -> Path:
    from civicflow_assets.demo_city import generate_demo_city, resample_requests

    out = folder / "potholes_distressed_pavement_bench.csv"
    if POTHOLES.exists():
        resample_requests(POTHOLES, out, rows)
        return out
    generate_demo_city(folder / "demo", requests=rows)
    return next((folder / "demo" / "311").glob("potholes_distressed_pavement*.csv"))


def bench_mapping() -> Mapping:
    from civicflow_assets.sources.mapping import load_mappings

    potholes = load_mappings([PACKAGE_DIR / "sources" / "mappings"])["chattanooga_311_potholes"]
    return dataclasses.replace(potholes, target="bench_requests")


def limit_script(url: str, path: Path) -> str:
    """The limit's psql script, written by the landing's own code: its land table and its typing SELECT."""
    from civicflow_assets.extracts import csv_extract
    from civicflow_assets.landing import ensure_landing_schema, land_columns, typing_select

    mapping, extract, conn = bench_mapping(), csv_extract(path), psycopg2.connect(url)
    ensure_landing_schema(conn)  # the typing calls its functions
    with conn.cursor() as cur:
        land = sql.Identifier("bench_limit_text")
        script = LIMIT_SQL.format(
            columns=land_columns(len(extract.header)).as_string(cur), path=path, timezone=mapping.timezone,
            copied=", ".join(f"c{i}" for i in range(len(extract.header))),
            select=typing_select(cur, mapping, extract, land).as_string(cur))
    conn.rollback()
    conn.close()
    return script


def run_landing(url: str, path: Path) -> dict:
    from civicflow_assets.landing import land_files

    result = land_files(psycopg2.connect(url), bench_mapping(), [path])
    return {"rows": result.loaded, "quarantined": result.quarantined,
            "steps": {k: round(v, 2) for k, v in result.step_seconds.items()}}


def run_limit(url: str, path: Path) -> dict:
    subprocess.run(["psql", "-q", url, "-f", str(path.with_name("limit.sql"))], check=True)
    return {}


def run_light(url: str, path: Path) -> dict:
    subprocess.run(["psql", "-q", url], input=LIGHT_SQL.format(path=path), text=True, check=True)
    return {}


def run_naive(url: str, path: Path) -> dict:
    import geopandas as gpd
    import pandas as pd
    from sqlalchemy import create_engine

    frame = pd.read_csv(path, dtype=str)
    for column in ("created_date", "due_at", "completed_at"):
        frame[column] = pd.to_datetime(frame[column], format="%m/%d/%Y %I:%M:%S %p").dt.tz_localize(
            "America/New_York", ambiguous="NaT", nonexistent="NaT")
    geometry = gpd.GeoSeries.from_wkt(frame.pop("loc"), crs=4326)
    gdf = gpd.GeoDataFrame(frame, geometry=geometry)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    gdf.to_postgis("bench_naive", engine, if_exists="replace", chunksize=50_000)
    return {"rows": len(gdf)}


METHODS = {"landing": run_landing, "limit": run_limit, "light": run_light, "naive": run_naive}


def make_input_apart(rows: int, folder: Path) -> Path:
    """make_input in a child process. A child started by fork/vfork + exec reports as its peak RSS at
    least this process's peak at that moment, so this process stays small: resampling the real export
    here would put its few hundred MB into every method's figure."""
    made = subprocess.run([sys.executable, __file__, "--make-input", str(folder), "--rows", str(rows)],
                          stdout=subprocess.PIPE, text=True, check=True)
    return Path(made.stdout.strip())


def settle(url: str) -> None:
    """Write back what earlier methods left dirty (the naive one writes 2 GB), so that every method starts on a
    quiet disk: otherwise the one run next pays for the writes of the one before."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    # On another server, not ours to checkpoint, its own writer settles it.
    with conn, conn.cursor() as cur, contextlib.suppress(psycopg2.errors.InsufficientPrivilege):
        cur.execute("checkpoint")
    conn.close()
    os.sync()


def measure(method: str, url: str, path: Path) -> dict:
    """Run one method in a child process; wall time and that process's peak RSS."""
    settle(url)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--child", method, "--url", url, "--input", str(path)],
                             stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method} failed")
    details = json.loads(child.stdout.read() or "{}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, **details}


def median(runs: list[dict]) -> dict:
    """The run of median time, and the highest peak RSS of them all."""
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**middle, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--input", type=Path)
    parser.add_argument("--make-input", type=Path)
    args = parser.parse_args()
    if args.make_input:
        print(make_input(args.rows, args.make_input))
        return
    if args.child:
        print(json.dumps(METHODS[args.child](args.url, args.input)))
        return
    with tempfile.TemporaryDirectory(prefix="civicflow-bench-") as folder:
        started = time.perf_counter()
        path = make_input_apart(args.rows, Path(folder))
        print(f"input: {path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows"
              f" ({'resampled from the real pothole export' if POTHOLES.exists() else 'generated'}),"
              f" made in {time.perf_counter() - started:.1f}s")
        rounds: dict[str, list[dict]] = {name: [] for name in METHODS}
        names = list(METHODS)
        for number in range(args.rounds):
            url = bench_url()
            path.with_name("limit.sql").write_text(limit_script(url, path))
            order = names[number % len(names):] + names[:number % len(names)]  # each method runs first in turn
            for name in order:
                rounds[name].append(measure(name, url, path))
            print(f"round {number + 1}: " + ", ".join(f"{name} {rounds[name][-1]['seconds']:.1f} s" for name in order))
    results = {name: median(runs) for name, runs in rounds.items()}
    for name, r in results.items():
        extra = f"  steps {r['steps']}" if "steps" in r else ""
        print(f"{name:8s} {r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:6.0f} MB{extra}  (median of {args.rounds})")
    landing, limit, light, naive = (results[n]["seconds"] for n in ("landing", "limit", "light", "naive"))
    print(f"landing / limit = {landing / limit:.2f}x (target <= 1.5x)")
    print(f"landing / light = {landing / light:.2f}x (the limit with a lighter typing, for reference)")
    print(f"naive / landing = {naive / landing:.2f}x (target >= 4x)")
    print(f"landing peak RSS = {results['landing']['peak_rss_mb']:.0f} MB (target < 400 MB)")


if __name__ == "__main__":
    main()
