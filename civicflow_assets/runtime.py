"""Process environment that child tools (dbt, the Dagster daemon) read for the warehouse connection."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse


def export_connection_env(database_url: str) -> None:
    url = urlparse(database_url)
    os.environ.update({
        "CIVICFLOW_PG_HOST": url.hostname or "127.0.0.1",
        "CIVICFLOW_PG_PORT": str(url.port or 5432),
        "CIVICFLOW_PG_USER": unquote(url.username or ""),
        "CIVICFLOW_PG_PASSWORD": unquote(url.password or ""),
        "CIVICFLOW_PG_DATABASE": url.path.lstrip("/") or "civicflow",
    })
