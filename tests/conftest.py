"""Tests run against a real PostgreSQL + PostGIS: the embedded cluster (or CIVICFLOW_DATABASE_URL's server),
in a database of their own that is created fresh for each session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from civicflow_assets.database import ensure_database, recreate_database
from civicflow_assets.runtime import export_connection_env
from civicflow_assets.settings import load_settings

# Tests start `dagster dev` now and then; its daemon must not launch scheduled runs meanwhile.
os.environ["CIVICFLOW_SCHEDULES"] = "stopped"
TEST_DATABASE = os.environ.get("CIVICFLOW_TEST_DB", "civicflow_test")  # one per concurrent session


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    url = recreate_database(ensure_database(load_settings()), TEST_DATABASE)
    os.environ["CIVICFLOW_DATABASE_URL"] = url
    export_connection_env(url)
    yield url
    admin = psycopg2.connect(_with_database(url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"drop database if exists {TEST_DATABASE} with (force)")
    admin.close()


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(warehouse_url)
    yield connection
    connection.close()


def scalar(conn: psycopg2.extensions.connection, query: str, *args: object) -> object:
    with conn.cursor() as cur:
        cur.execute(query, args or None)
        value = cur.fetchone()[0]
    conn.commit()
    return value
