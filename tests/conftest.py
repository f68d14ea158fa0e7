"""Tests run against a real PostgreSQL + PostGIS: the embedded cluster (or CIVICFLOW_DATABASE_URL's server),
in a database of their own that is created fresh for each session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from civicflow_assets.database import connect, ensure_database
from civicflow_assets.runtime import export_connection_env
from civicflow_assets.settings import load_settings

# Tests start `dagster dev` now and then; its daemon must not launch scheduled runs meanwhile.
os.environ["CIVICFLOW_SCHEDULES"] = "stopped"
TEST_DATABASE = os.environ.get("CIVICFLOW_TEST_DB", "civicflow_test")  # one per concurrent session


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    admin = _with_database(ensure_database(load_settings()), "postgres")
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists {TEST_DATABASE} with (force)")
        cur.execute(f"create database {TEST_DATABASE}")
    url = _with_database(admin, TEST_DATABASE)
    with connect(url) as c, c.cursor() as cur:
        cur.execute("create extension postgis")
    os.environ["CIVICFLOW_DATABASE_URL"] = url
    export_connection_env(url)
    yield url
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists {TEST_DATABASE} with (force)")
    conn.close()


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
