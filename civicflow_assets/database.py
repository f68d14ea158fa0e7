"""The embedded PostgreSQL + PostGIS cluster, and the connection resource the assets use.

`CIVICFLOW_DATABASE_URL` points at any other PostGIS instead; then nothing here starts a server.
The cluster runs as a non-root OS user because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2
import psycopg2.extensions
from dagster import ConfigurableResource

from civicflow_assets.settings import Settings

SERVICE_USER = "civicflow"
DATABASES = ("civicflow", "dagster")
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


class DatabaseError(RuntimeError):
    pass


def _pg_bin(tool: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        candidate = Path(folder) / tool
        if candidate.exists():
            return str(candidate)
    found = shutil.which(tool)
    if not found:
        raise DatabaseError(f"PostgreSQL's {tool} is not installed: run `make install` (apt postgresql-15).")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
        )
        return pwd.getpwnam(SERVICE_USER)


@dataclass
class EmbeddedPostgres:
    """A project-owned cluster under `<state>/pg`: trust on loopback only, a port picked once and kept."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())

    def url(self, database: str = "civicflow") -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    def _run_as_owner(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            args = ["runuser", "-u", SERVICE_USER, "--", *args]
        return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)

    def is_running(self) -> bool:
        if not self.port_file.exists():
            return False
        result = subprocess.run(
            [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
        )
        return result.returncode == 0

    def status(self) -> str:
        if not (self.data_dir / "PG_VERSION").exists():
            return "not initialised"
        return f"running on port {self.port}" if self.is_running() else "stopped"

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = _ensure_service_user()
            os.chown(self.root, user.pw_uid, user.pw_gid)
            _make_traversable(self.root)
        self._run_as_owner(
            [_pg_bin("initdb"), "-D", str(self.data_dir), "-U", SERVICE_USER, "--auth=trust",
             # Text sorts byte-wise ("C"; PostgreSQL 15 compares C.UTF-8 through strcoll, about 4x slower
             # to index a million keys), characters are classified as UTF-8 (upper(), regular expressions).
             "--encoding=UTF8", "--lc-collate=C", "--lc-ctype=C.UTF-8"]
        )
        # Trust, but only over loopback: no socket directory outside the cluster, no remote hosts.
        (self.data_dir / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        )
        self.port_file.write_text(str(_free_port()))

    def start(self) -> str:
        self.init()
        if self.is_running():
            return self.url()
        if _port_taken(self.port):
            self.port_file.write_text(str(_free_port()))
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c shared_buffers=512MB -c work_mem=64MB -c maintenance_work_mem=512MB "
            "-c max_wal_size=4GB -c synchronous_commit=off -c max_connections=200 -c temp_buffers=1GB "
            # No replicas of a project's own cluster: a table filled in the transaction that created or
            # truncated it needs no WAL, which halves the cost of a first load.
            "-c wal_level=minimal -c max_wal_senders=0 "
            "-c max_parallel_workers_per_gather=2"
        )
        self._run_as_owner(
            [_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
             "-w", "-t", "60", "start"]
        )
        for database in DATABASES:
            _create_database(self.url("postgres"), database)
        with connect(self.url()) as conn, conn.cursor() as cur:
            cur.execute("create extension if not exists postgis")
        return self.url()

    def stop(self) -> None:
        if self.is_running():
            self._run_as_owner([_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])


def _make_traversable(path: Path) -> None:
    """The service user must reach its folder through the checkout's parents."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# The project's databases sort text byte-wise whatever the server's default, as initdb sets it above.
BYTEWISE = "template template0 lc_collate 'C'"


def _create_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{name}" {BYTEWISE}')
    finally:
        conn.close()


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection that commits on success, rolls back on error and always closes."""
    conn = psycopg2.connect(url)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.pg_dir)


def ensure_database(settings: Settings) -> str:
    """The URL to use: the configured one, or the embedded cluster's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return embedded(settings).start()


def dagster_storage_url(settings: Settings) -> str:
    if settings.database_url:
        base, _, _ = settings.database_url.rpartition("/")
        return f"{base}/dagster"
    return embedded(settings).url("dagster")


def recreate_database(url: str, name: str) -> str:
    """A new, empty PostGIS database `name` on the server of `url` (dropped first if it exists); its URL."""
    parts = urlparse(url)
    admin = psycopg2.connect(urlunparse(parts._replace(path="/postgres")))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
            cur.execute(f'create database "{name}" {BYTEWISE}')
    finally:
        admin.close()
    created = urlunparse(parts._replace(path=f"/{name}"))
    with connect(created) as conn, conn.cursor() as cur:
        cur.execute("create extension postgis")
    return created


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class PostgresResource(ConfigurableResource):
    """The warehouse connection, injected into assets through Definitions."""

    url: str

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        with connect(self.url) as conn:
            yield conn
