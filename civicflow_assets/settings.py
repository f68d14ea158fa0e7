"""Every CivicFlow setting in one typed place: environment variables with defaults.

Nothing else in the package reads the environment; assets get these through resources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(__file__).resolve().parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def _paths(value: str) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p]


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str | None
    data_dirs: list[Path]
    mapping_dirs: list[Path]
    demo_requests: int
    census_api_url: str | None
    census_api_key: str | None
    census_year: int
    census_geo_in: str
    open311_url: str | None
    open311_api_key: str | None
    open311_jurisdiction: str | None
    timezone: str
    schedules_running: bool
    ckan_datastore_url: str | None

    @property
    def demo_dir(self) -> Path:
        return self.state_dir / "demo"

    @property
    def pg_dir(self) -> Path:
        return self.state_dir / "pg"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    state_dir = Path(env.get("CIVICFLOW_STATE_DIR", REPO_ROOT / ".civicflow")).resolve()
    data = env.get("CIVICFLOW_DATA_DIR", "")
    return Settings(
        state_dir=state_dir,
        database_url=env.get("CIVICFLOW_DATABASE_URL") or None,
        data_dirs=_paths(data) if data else [state_dir / "demo"],
        mapping_dirs=[PACKAGE_DIR / "sources" / "mappings", *_paths(env.get("CIVICFLOW_MAPPINGS_DIR", ""))],
        demo_requests=int(env.get("CIVICFLOW_DEMO_REQUESTS", "50000")),
        # Unset: the ACS API asset lands nothing (the demo and offline runs read census files instead).
        census_api_url=env.get("CIVICFLOW_CENSUS_API_URL") or None,
        census_api_key=env.get("CENSUS_API_KEY") or None,
        census_year=int(env.get("CIVICFLOW_CENSUS_YEAR", "2022")),
        census_geo_in=env.get("CIVICFLOW_CENSUS_GEO_IN", "state:47+county:065"),
        open311_url=env.get("CIVICFLOW_OPEN311_URL") or None,
        open311_api_key=env.get("CIVICFLOW_OPEN311_API_KEY") or None,
        open311_jurisdiction=env.get("CIVICFLOW_OPEN311_JURISDICTION") or None,
        timezone=env.get("CIVICFLOW_TIMEZONE", "America/New_York"),
        schedules_running=env.get("CIVICFLOW_SCHEDULES", "running") != "stopped",
        # An external CKAN's DataStore database (its ckan.datastore.write_url), for COPY loads instead of the API.
        ckan_datastore_url=env.get("CIVICFLOW_CKAN_DATASTORE_URL") or None,
    )
