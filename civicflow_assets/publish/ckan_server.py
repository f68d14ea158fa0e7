"""The local CKAN 2.11 portal CivicFlow publishes to in development and tests.

`CkanServer` owns everything under `<state>/ckan/`: CKAN's own virtualenv (its exact pins clash with the
pipeline's), `ckan.ini`, uploads, Redis data, the Solr stand-in's snapshots, pid files and logs. It runs three
processes, each in its own process group: Redis (Debian's redis-server), the Solr stand-in
(`solr_standin.py`, tests and development only) and CKAN's development server, all on 127.0.0.1 ports
picked once and kept. CKAN's databases (`ckan_default`, `datastore_default` with a read-only role) live in
the project's PostgreSQL cluster.

`CIVICFLOW_CKAN_URL` + `CIVICFLOW_CKAN_API_TOKEN` point at another CKAN instead: see `ckan_connection`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import psycopg2

from civicflow_assets.settings import REPO_ROOT, Settings, load_settings

CKAN_VERSION = "2.11.6"
CKAN_REQUIREMENT = f"ckan[requirements]=={CKAN_VERSION}"
HOST = "127.0.0.1"
SOLR_CORE = "ckan"
SITE_ID = "default"  # ckan.site_id, which the index documents carry
MAIN_ROLE = MAIN_DB = "ckan_default"
READ_ROLE = "datastore_default"
DATASTORE_DB = "datastore_default"
SYSADMIN = "civicflow_publisher"
TOKEN_NAME = "civicflow"
MAX_RESOURCE_SIZE_MB = 4096  # measured at a million rows: GeoJSON 1.0 GB, KML 2.0 GB
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
BOOTSTRAP_SCRIPT = Path(__file__).with_name("ckan_bootstrap.py")


class CkanError(RuntimeError):
    pass


# ---------------------------------------------------------------- processes

_children: dict[int, subprocess.Popen] = {}  # kept so our own children are reaped, not left as zombies


def _alive(pid: int) -> bool:
    if pid in _children and _children[pid].poll() is not None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


@dataclass
class Service:
    """One long-running process in its own process group, found again through its pid file."""

    name: str
    root: Path
    marker: str  # must appear in the command line, so a recycled pid is not mistaken for ours

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if pid in _children:  # our own child: its exit status is authoritative (redis rewrites its cmdline)
            return pid if _children[pid].poll() is None else None
        return pid if _alive(pid) and self.marker in _cmdline(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def spawn(self, argv: list[str], env: Mapping[str, str], cwd: Path) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(env), cwd=cwd, start_new_session=True)
        _children[process.pid] = process
        self.pid_file.write_text(str(process.pid))

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _children.pop(pid, None)
    return True


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-40:]
        raise CkanError(f"{what} failed ({result.returncode}):\n" + "\n".join(output))
    return result


# ---------------------------------------------------------------- readiness probes

def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _redis_ok(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _wait_until(ready, service: Service, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if not service.is_running():
            raise CkanError(f"{what} exited during start-up; {service.log_file}:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            raise CkanError(f"{what} did not answer within {timeout:.0f}s; {service.log_file}:\n{service.log_tail()}")
        time.sleep(0.1)


# ---------------------------------------------------------------- ckan.ini

def _set_options(ini: str, options: Mapping[str, str]) -> str:
    """Set `key = value` lines in [app:main], replacing the (possibly commented) line CKAN generated."""
    lines = ini.splitlines()
    start = lines.index("[app:main]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    missing = dict(options)
    for i in range(start + 1, end):
        key = lines[i].lstrip("#").split("=", 1)[0].strip()
        if "=" in lines[i] and key in missing:
            lines[i] = f"{key} = {missing.pop(key)}"
    added = [f"{key} = {value}" for key, value in missing.items()]
    return "\n".join(lines[:end] + added + lines[end:]) + "\n"


@dataclass(frozen=True)
class Ports:
    ckan: int
    redis: int
    solr: int


@dataclass(frozen=True)
class Databases:
    main: str
    datastore_write: str
    datastore_read: str
    admin: str  # a superuser connection to the `postgres` database


# ---------------------------------------------------------------- the server

@dataclass
class CkanServer:
    """CKAN + Redis + the Solr stand-in under `root` (normally `.civicflow/ckan`)."""

    root: Path
    settings: Settings | None = None
    services: dict[str, Service] = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.services = {
            "ckan": Service("ckan", self.root, marker=str(self.venv / "bin" / "ckan")),
            "solr": Service("solr", self.root, marker="civicflow_assets.publish.solr_standin"),
            "redis": Service("redis", self.root, marker="redis-server"),
        }

    @classmethod
    def for_settings(cls, settings: Settings) -> CkanServer:
        return cls(settings.state_dir / "ckan", settings)

    # -- paths and saved state

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def ini_file(self) -> Path:
        return self.root / "ckan.ini"

    @property
    def token_file(self) -> Path:
        return self.root / "api_token"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def ckan_bin(self) -> Path:
        return self.venv / "bin" / "ckan"

    def _ports(self) -> Ports | None:
        try:
            return Ports(**json.loads(self.ports_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    @property
    def url(self) -> str:
        ports = self._ports()
        if ports is None:
            raise CkanError("CKAN has never been started: run `civicflow ckan start`")
        return f"http://{HOST}:{ports.ckan}"

    @property
    def api_token(self) -> str:
        if not self.token_file.exists():
            raise CkanError("no API token yet: run `civicflow ckan start`")
        return self.token_file.read_text().strip()

    # -- lifecycle

    def is_running(self) -> bool:
        ports = self._ports()
        if ports is None or not all(service.is_running() for service in self.services.values()):
            return False
        return _http_ok(f"http://{HOST}:{ports.ckan}/api/3/action/status_show")

    def status(self) -> str:
        if not (self.venv / "bin" / "python").exists():
            return "not installed"
        running = [name for name, service in self.services.items() if service.is_running()]
        ports = self._ports()
        if len(running) == len(self.services) and ports and self.is_running():
            return f"running at {self.url} (redis :{ports.redis}, solr stand-in :{ports.solr})"
        if running:
            return f"partly running ({', '.join(running)}); `civicflow ckan start` completes it"
        return "stopped"

    def start(self) -> str:
        """Install (first time), prepare and start everything; return CKAN's URL. A no-op when running."""
        with self._lock():
            if self.is_running() and self.token_file.exists():
                return self.url
            try:
                self._start_all()
            except BaseException:
                self._stop_all()  # no half-started portal left behind
                raise
            return self.url

    def _start_all(self) -> None:
        installed = self.install()
        databases = self._prepare_databases()
        ports = self._choose_ports()
        self._write_config(ports, databases)
        self._start_redis(ports)
        self._start_solr(ports)
        if installed or not self._ckan_schema_exists(databases):
            self._ckan_cli(["db", "init"], "ckan db init")
        self._ensure_datastore_permissions(databases)
        self._reconcile_search_index(ports, databases)
        self._start_ckan(ports)
        self._ensure_token()

    def stop(self) -> None:
        with self._lock():
            self._stop_all()

    def _stop_all(self) -> None:
        for name in ("ckan", "solr", "redis"):
            self.services[name].stop()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes (a test session and `civicflow ckan start`) must not initialise at the same time.
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- install

    def install(self) -> bool:
        """Create CKAN's virtualenv unless it already holds CKAN_REQUIREMENT; True when it (re)installed."""
        stamp = self.root / "venv.stamp"
        if (self.venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == CKAN_REQUIREMENT:
            return False
        uv = shutil.which("uv")
        if uv is None:
            raise CkanError("uv is needed to install CKAN's virtualenv: `python3 -m pip install uv`")
        _run([uv, "venv", "--quiet", "--allow-existing", "-p", "python3.11", str(self.venv)], "uv venv")
        # Compiled bytecode: this machine sets PYTHONDONTWRITEBYTECODE, and CKAN imports a lot at start-up.
        _run([uv, "pip", "install", "--quiet", "--compile-bytecode", CKAN_REQUIREMENT],
             f"installing {CKAN_REQUIREMENT} (psycopg2 builds from source: needs gcc and libpq-dev)",
             env={**os.environ, "VIRTUAL_ENV": str(self.venv)})
        stamp.write_text(CKAN_REQUIREMENT)
        return True

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["CKAN_INI"] = str(self.ini_file)
        return env

    def _ckan_cli(self, args: list[str], what: str) -> subprocess.CompletedProcess:
        return _run([str(self.ckan_bin), "-c", str(self.ini_file), *args], what, env=self._child_env(),
                    cwd=self.root)

    # -- databases

    def _db_password(self) -> str:
        # Ignored by the embedded cluster (trust on loopback), needed by a password-protected external server.
        path = self.root / "db_password"
        if not path.exists():
            _write_secret(path, secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _prepare_databases(self) -> Databases:
        from civicflow_assets.database import ensure_database  # imports Dagster: only when starting

        warehouse = urlsplit(ensure_database(self.settings or load_settings()))
        admin = warehouse._replace(path="/postgres").geturl()
        password = self._db_password()
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for role in (MAIN_ROLE, READ_ROLE):
                    cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                    verb = "alter" if cur.fetchone() else "create"
                    cur.execute(f'{verb} role "{role}" login password %s', (password,))
                for database in (MAIN_DB, DATASTORE_DB):
                    cur.execute("select 1 from pg_database where datname = %s", (database,))
                    if cur.fetchone() is None:
                        cur.execute(f'create database "{database}" owner "{MAIN_ROLE}" encoding \'UTF8\'')
        finally:
            conn.close()

        def url(role: str, database: str) -> str:
            return f"postgresql://{role}:{quote(password)}@{warehouse.hostname}:{warehouse.port or 5432}/{database}"

        return Databases(main=url(MAIN_ROLE, MAIN_DB), datastore_write=url(MAIN_ROLE, DATASTORE_DB),
                         datastore_read=url(READ_ROLE, DATASTORE_DB), admin=admin)

    def _ckan_schema_exists(self, databases: Databases) -> bool:
        with contextlib.closing(psycopg2.connect(databases.main)) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass('public.package') is not null and "
                        "to_regclass('public.activity') is not null")
            return bool(cur.fetchone()[0])

    def _ensure_datastore_permissions(self, databases: Databases) -> None:
        datastore_admin = urlsplit(databases.admin)._replace(path=f"/{DATASTORE_DB}").geturl()
        with contextlib.closing(psycopg2.connect(datastore_admin)) as conn:
            with conn.cursor() as cur:
                cur.execute("select to_regclass('public._table_metadata') is not null")
                if cur.fetchone()[0]:
                    return
                cur.execute(self._permissions_sql())
            conn.commit()

    def _permissions_sql(self) -> str:
        """The SQL `ckan datastore set-permissions` prints, from the same function, minus psql's \\connect."""
        script = ("from ckanext.datastore.cli import permissions_sql as p; "
                  f"print(p('{MAIN_DB}', '{DATASTORE_DB}', '{MAIN_ROLE}', '{MAIN_ROLE}', '{READ_ROLE}'))")
        sql = _run([str(self.venv / "bin" / "python"), "-c", script], "datastore permissions SQL",
                   env=self._child_env()).stdout
        return "\n".join(line for line in sql.splitlines() if not line.startswith("\\connect"))

    def _reconcile_search_index(self, ports: Ports, databases: Databases) -> None:
        """Rebuild the index when it disagrees with the database (a wiped state folder or a recreated cluster)."""
        with contextlib.closing(psycopg2.connect(databases.main)) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from package where state <> 'deleted'")
            in_database = cur.fetchone()[0]
        query = urlencode({"q": "*:*", "fq": f'+site_id:"{SITE_ID}" +entity_type:package', "rows": 0, "wt": "json"})
        with urllib.request.urlopen(f"http://{HOST}:{ports.solr}/solr/{SOLR_CORE}/select?{query}", timeout=10) as r:
            in_index = json.load(r)["response"]["numFound"]
        if in_index != in_database:
            self._ckan_cli(["search-index", "rebuild", "--clear", "--quiet"], "ckan search-index rebuild")

    # -- configuration

    def _choose_ports(self) -> Ports:
        saved = self._ports()
        chosen = {}
        for name in ("ckan", "redis", "solr"):
            port = getattr(saved, name) if saved else None
            if port is None or (not self.services[name].is_running() and _port_taken(port)):
                port = _free_port()
            chosen[name] = port
        ports = Ports(**chosen)
        self.ports_file.write_text(json.dumps(chosen))
        return ports

    def _write_config(self, ports: Ports, databases: Databases) -> None:
        if not self.ini_file.exists():
            _run([str(self.ckan_bin), "generate", "config", str(self.ini_file)], "ckan generate config",
                 env=self._child_env())
            self.ini_file.chmod(0o600)  # SECRET_KEY signs the API tokens
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        options = {
            "sqlalchemy.url": databases.main,
            "ckan.site_url": f"http://{HOST}:{ports.ckan}",
            "ckan.site_title": "CivicFlow open data (local)",
            "ckan.redis.url": f"redis://{HOST}:{ports.redis}/0",
            "solr_url": f"http://{HOST}:{ports.solr}/solr/{SOLR_CORE}",
            "ckan.storage_path": str(storage),
            "ckan.plugins": "activity datastore",
            "ckan.datastore.write_url": databases.datastore_write,
            "ckan.datastore.read_url": databases.datastore_read,
            "ckan.datastore.sqlsearch.enabled": "true",
            # GIN, not the default GiST: the full-text index builds several times faster and answers
            # datastore_search `q` faster too.
            "ckan.datastore.default_fts_index_method": "gin",
            # One full-text index per table (_full_text, what `q` searches), not one more per text field: those
            # serve only a per-field `q` ({"Status": "closed"}; filters and `sql` use none of them), and each
            # costs a build and an update per upserted row. 311 Service Requests has 18 text fields: its first
            # publication of a million requests went from 239 s to 212 s (bench/pipeline.py).
            "ckan.datastore.default_fts_index_field_types": "",
            "ckan.max_resource_size": str(MAX_RESOURCE_SIZE_MB),
            "ckan.devserver.host": HOST,
            "ckan.devserver.port": str(ports.ckan),
            "ckan.devserver.threaded": "true",
            "ckan.views.default_views": "",  # the default image/datatables views need plugins not loaded here
        }
        current = self.ini_file.read_text()
        wanted = _set_options(current, options)
        if wanted != current:
            self.ini_file.write_text(wanted)

    # -- the three processes

    def _start_redis(self, ports: Ports) -> None:
        service = self.services["redis"]
        if not service.is_running():
            data = self.root / "redis"
            data.mkdir(parents=True, exist_ok=True)
            service.spawn([_redis_server(), "--bind", HOST, "--port", str(ports.redis), "--dir", str(data),
                           "--daemonize", "no", "--protected-mode", "yes", "--logfile", ""],
                          os.environ, self.root)
        _wait_until(lambda: _redis_ok(ports.redis), service, "redis-server", timeout=20)

    def _start_solr(self, ports: Ports) -> None:
        service = self.services["solr"]
        if not service.is_running():
            service.spawn([sys.executable, "-m", "civicflow_assets.publish.solr_standin", "--host", HOST,
                           "--port", str(ports.solr), "--data-dir", str(self.root / "solr")],
                          os.environ, REPO_ROOT)
        _wait_until(lambda: _http_ok(f"http://{HOST}:{ports.solr}/solr/{SOLR_CORE}/admin/ping"), service,
                    "the Solr stand-in", timeout=20)

    def _start_ckan(self, ports: Ports) -> None:
        service = self.services["ckan"]
        if not service.is_running():
            # No reloader (a second process, slower start) and no Werkzeug debugger (it executes code).
            service.spawn([str(self.ckan_bin), "-c", str(self.ini_file), "run", "--host", HOST,
                           "--port", str(ports.ckan), "--disable-reloader", "--disable-debugger", "--threaded"],
                          self._child_env(), self.root)
        _wait_until(lambda: _http_ok(f"http://{HOST}:{ports.ckan}/api/3/action/status_show"), service, "CKAN")

    # -- sysadmin and token

    def _ensure_token(self) -> None:
        if self.token_file.exists() and self._token_works(self.token_file.read_text().strip()):
            return
        password_file = self.root / "sysadmin_password"
        if not password_file.exists():
            _write_secret(password_file, secrets.token_urlsafe(18))
        request = {"ini": str(self.ini_file), "user": SYSADMIN, "email": f"{SYSADMIN}@localhost.invalid",
                   "password": password_file.read_text().strip(), "token_name": TOKEN_NAME}
        result = _run([str(self.venv / "bin" / "python"), str(BOOTSTRAP_SCRIPT)], "creating the sysadmin",
                      input=json.dumps(request), env=self._child_env(), cwd=self.root)
        token = json.loads(result.stdout.strip().splitlines()[-1])["token"]
        _write_secret(self.token_file, token)

    def _token_works(self, token: str) -> bool:
        # Reads accept a bad token as anonymous, so ask for something that needs a login.
        request = urllib.request.Request(
            f"{self.url}/api/3/action/api_token_list", data=json.dumps({"user_id": SYSADMIN}).encode(),
            headers={"Authorization": token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return False


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    path.chmod(0o600)


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise CkanError("redis-server is not installed: `sudo apt-get install redis-server`")
    _run(["apt-get", "update", "-qq"], "apt-get update")
    _run(["apt-get", "install", "-y", "-qq", "redis-server"], "apt-get install redis-server",
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    # Debian starts its own redis service on 6379; CivicFlow runs its own instance and does not need it.
    subprocess.run(["systemctl", "disable", "--now", "redis-server"], capture_output=True, check=False)
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def ckan_server(settings: Settings | None = None) -> CkanServer:
    return CkanServer.for_settings(settings or load_settings())


def external_ckan(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(url, token) of the CKAN named by CIVICFLOW_CKAN_URL + CIVICFLOW_CKAN_API_TOKEN, or None."""
    env = os.environ if env is None else env
    url, token = env.get("CIVICFLOW_CKAN_URL"), env.get("CIVICFLOW_CKAN_API_TOKEN")
    if url and token:
        return url.rstrip("/"), token
    if url or token:
        raise CkanError("set both CIVICFLOW_CKAN_URL and CIVICFLOW_CKAN_API_TOKEN, or neither")
    return None


def ckan_connection(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(url, API token) to publish to: the external CKAN when configured, else the local one, started if needed."""
    external = external_ckan(env)
    if external:
        return external
    server = CkanServer.for_settings(load_settings(None if env is None else dict(env)))
    server.start()
    return server.url, server.api_token
