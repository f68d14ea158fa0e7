"""`civicflow`: the front door. Database, demo data, the main job, the UI."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from civicflow_assets.database import dagster_storage_url, embedded, ensure_database
from civicflow_assets.publish.ckan_cli import ckan
from civicflow_assets.runtime import export_connection_env
from civicflow_assets.settings import REPO_ROOT, Settings, load_settings


def prepare_dagster_home(settings: Settings) -> Path:
    """A DAGSTER_HOME under the state folder whose instance stores runs in the project's PostgreSQL."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["CIVICFLOW_DAGSTER_PG_URL"] = dagster_storage_url(settings).replace(
        "postgresql://", "postgresql+psycopg2://", 1)
    return home


def ensure_demo_data(settings: Settings) -> list[Path]:
    """The configured data folders, or the generated demo city when none is configured."""
    if os.environ.get("CIVICFLOW_DATA_DIR"):
        return settings.data_dirs
    marker = settings.demo_dir / ".generated"
    wanted = f"requests={settings.demo_requests}"
    if not marker.exists() or marker.read_text() != wanted:
        from civicflow_assets.demo_city import generate_demo_city

        click.echo(f"Generating the demo city ({settings.demo_requests:,} requests) in {settings.demo_dir}")
        shutil.rmtree(settings.demo_dir, ignore_errors=True)
        generate_demo_city(settings.demo_dir, requests=settings.demo_requests)
        marker.write_text(wanted)
    os.environ["CIVICFLOW_DATA_DIR"] = str(settings.demo_dir)
    return [settings.demo_dir]


QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@click.group(help=__doc__)
def main() -> None:
    pass


@main.group(help="The embedded PostgreSQL + PostGIS cluster (ignored when CIVICFLOW_DATABASE_URL is set).")
def db() -> None:
    pass


@db.command("start", help="Initialise (first time) and start the cluster; print its URL.")
def db_start() -> None:
    click.echo(ensure_database(load_settings()))


@db.command("stop", help="Stop the cluster.")
def db_stop() -> None:
    embedded(load_settings()).stop()
    click.echo("stopped")


@db.command("status", help="Say whether the cluster is initialised and running.")
def db_status() -> None:
    settings = load_settings()
    if settings.database_url:
        click.echo(f"external database: {settings.database_url.split('@')[-1]}")
    else:
        click.echo(embedded(settings).status())


@db.command("url", help="Print the warehouse URL (starting the embedded cluster if needed).")
def db_url() -> None:
    click.echo(ensure_database(load_settings()))


@main.command(help="Generate the seeded demo city's extracts (same formats as the real exports).")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--requests", type=int, default=50_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def generate(out: Path, requests: int, seed: int) -> None:
    from civicflow_assets.demo_city import generate_demo_city

    started = time.monotonic()
    counts = generate_demo_city(out, requests=requests, seed=seed)
    click.echo(f"{len(counts)} files, {sum(counts.values()):,} rows in {time.monotonic() - started:.1f}s: {out}")


@main.command(help="Run the main job: every asset, raw to marts to CKAN (demo city unless CIVICFLOW_DATA_DIR is set).")
def run() -> None:
    settings = load_settings()
    url = ensure_database(settings)
    export_connection_env(url)
    data_dirs = ensure_demo_data(settings)
    prepare_dagster_home(settings)
    from dagster import DagsterInstance

    from civicflow_assets.definitions import defs

    click.echo(f"Warehouse {url.split('@')[-1]}; data from {', '.join(map(str, data_dirs))}")
    started = time.monotonic()
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("everything").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET)
    click.echo(f"{'Succeeded' if result.success else 'FAILED'} in {time.monotonic() - started:.0f}s, "
               f"run {result.run_id}")
    published = []
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if (rows := materialization.metadata.get("rows_loaded")) is not None:
            click.echo(f"  {materialization.asset_key.to_user_string():45s} {rows.value:>10,} rows")
        if (url := materialization.metadata.get("ckan_url")) is not None:
            published.append(url.value)
    if published:
        portal = published[0].split("/dataset/")[0]
        click.echo(f"Published on CKAN {portal}:")
        for url in sorted(set(published)):  # a report asset publishes several tables to one dataset
            click.echo(f"  {url.split('/dataset/')[-1]:45s} {url}")
    sys.exit(0 if result.success else 1)


@main.command(help="The Dagster UI and daemon (`dagster dev`) on the project database; Ctrl-C stops both.")
@click.option("--port", type=int, default=3000, show_default=True)
def ui(port: int) -> None:
    settings = load_settings()
    export_connection_env(ensure_database(settings))
    ensure_demo_data(settings)
    prepare_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    # Its own process group: `dagster dev` spawns the webserver, the daemon and code servers.
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    click.echo(f"Dagster UI: http://127.0.0.1:{port}")
    try:
        process.wait()
    except KeyboardInterrupt:
        stop_process_group(process)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_process_group(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGINT lets dagster dev shut its children down; whatever is left after `timeout` is killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


main.add_command(ckan)

if __name__ == "__main__":
    main()
