"""Faults against the real CKAN: a publisher that crashes between resources or is killed mid-publication, a CKAN
that answers 5xx or drops connections, a bad token, a CKAN whose database is out of reach (API loads), and an upload
too large to hold in memory twice."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import psycopg2
import pytest
import requests
from ckanapi import NotFound, RemoteCKAN

from civicflow_assets.publish.client import CkanAuthError, CkanClient
from civicflow_assets.publish.publisher import ensure_organization, publish_dataset
from civicflow_assets.settings import REPO_ROOT
from tests.test_publish_fixtures import (
    ckan_state,
    comparable,
    datastore_rows,
    make_client,
    make_context,
    make_requests_table,
    managed_resources,
    requests_spec,
    table_rows,
)

pytest_plugins = ["tests.test_publish_fixtures"]

TITLE = "Pothole requests (fault tests)"


class InjectedCrash(RuntimeError):
    pass


def crash_at(step: str) -> Callable[[str], None]:
    def hook(current: str) -> None:
        if current == step:
            raise InjectedCrash(step)

    return hook


def assert_published_whole(ckan: RemoteCKAN, conn, name: str, table: str) -> None:
    resources = managed_resources(ckan, name)
    assert all(len(found) == 1 for found in resources.values()), {k: len(v) for k, v in resources.items()}
    rows = datastore_rows(ckan, resources["datastore"][0]["id"], "RequestId")
    assert comparable(rows) == comparable(table_rows(conn, table))


@pytest.fixture(scope="module")
def fault_table(warehouse_url: str) -> str:
    with psycopg2.connect(warehouse_url) as conn:
        make_requests_table(conn, "requests_faults", every=9)
    return "requests_faults"


@pytest.fixture(scope="module")
def reference_state(fault_table, warehouse_url, ckan, organization, datastore_url, unique_ckan_name) -> dict:
    """What a publication that never failed leaves in CKAN."""
    spec = requests_spec(fault_table, unique_ckan_name("cf-reference"), title=TITLE)
    with make_client(ckan) as client:
        publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
    return ckan_state(ckan, spec.ckan_name)


@pytest.mark.parametrize("step", ["package", "datastore:written", "resource:json", "resource:shapefile"])
def test_crash_between_resources_then_rerun_gives_the_same_state(step, fault_table, reference_state, warehouse_url,
                                                                 ckan, organization, datastore_url, conn,
                                                                 unique_ckan_name) -> None:
    spec = requests_spec(fault_table, unique_ckan_name("cf-crash"), title=TITLE)
    with make_client(ckan) as client:
        with pytest.raises(InjectedCrash):
            publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url,
                                               hook=crash_at(step)))
        publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
        assert ckan_state(ckan, spec.ckan_name) == reference_state
        assert_published_whole(ckan, conn, spec.ckan_name, fault_table)
        assert publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url)).sent == []


CHILD = textwrap.dedent("""
    import os, signal, sys
    from civicflow_assets.publish.catalog import Organization
    from civicflow_assets.publish.client import CkanClient
    from civicflow_assets.publish.publisher import PublishContext, publish_dataset
    from tests.test_publish_fixtures import requests_spec

    warehouse, url, token, datastore, org, name, table, step = sys.argv[1:9]

    def hook(current):
        if current == step:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash

    spec = requests_spec(table, name, title=sys.argv[9])
    client = CkanClient(url, token)
    publish_dataset(spec, PublishContext(warehouse, client, Organization(org, "CivicFlow Publication Tests"),
                                         datastore or None, hook=hook))
""")


@pytest.mark.parametrize("step", ["datastore:written", "resource:geojson"])
def test_killed_publisher_then_rerun_converges(step, warehouse_url, ckan, organization, datastore_url, conn,
                                               unique_ckan_name) -> None:
    fault_table = f"requests_killed_{step.split(':')[-1]}"
    make_requests_table(conn, fault_table, every=11)
    spec = requests_spec(fault_table, unique_ckan_name("cf-killed"), title=TITLE)

    def child(at: str) -> int:
        argv = [sys.executable, "-c", CHILD, warehouse_url, ckan.address, ckan.apikey, datastore_url or "",
                organization.name, spec.ckan_name, fault_table, at, TITLE]
        return subprocess.run(argv, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                              timeout=600).returncode

    assert child(step) == -9
    # Killed again during a delta: rows already upserted by the dead run are sent again, harmlessly.
    with conn.cursor() as cur:
        cur.execute(f'update fixture.{fault_table} set "ModifiedDate" = now(), "Status" = \'other\' '
                    f'where "RequestId" in (select "RequestId" from fixture.{fault_table} order by 1 limit 20)')
    conn.commit()
    assert child("datastore:written") == -9
    with make_client(ckan) as client:
        publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
        assert_published_whole(ckan, conn, spec.ckan_name, fault_table)
        assert publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url)).sent == []


class FlakyProxy(http.server.ThreadingHTTPServer):
    """In front of CKAN: every third call answers 503 without reaching it, every fifth reaches CKAN but loses the
    answer (502, the worst case: the write happened), every seventh drops the connection."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.calls = 0
        self.failures = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fate(self) -> str:
        with self.lock:
            self.calls += 1
            n = self.calls
        fate = "503" if n % 3 == 0 else "lost" if n % 5 == 0 else "drop" if n % 7 == 0 else "ok"
        if fate != "ok":
            self.failures += 1
        return fate


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: FlakyProxy

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fate = self.server.fate()
        if fate == "503":
            self._answer(503, b"Service Unavailable")
            return
        if fate == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        response = requests.request(self.command, self.server.target + self.path, data=body, headers=headers,
                                    timeout=300, allow_redirects=False)
        if fate == "lost":
            self._answer(502, b"Bad Gateway")
            return
        self._answer(response.status_code, response.content, response.headers.get("Content-Type"))

    def _answer(self, status: int, body: bytes, content_type: str | None = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _forward


@pytest.fixture
def flaky_ckan(ckan: RemoteCKAN) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(ckan.address)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_5xx_and_dropped_connections_are_retried_to_the_same_state(fault_table, reference_state, flaky_ckan,
                                                                   warehouse_url, ckan, organization, datastore_url,
                                                                   conn, unique_ckan_name) -> None:
    spec = requests_spec(fault_table, unique_ckan_name("cf-flaky"), title=TITLE)
    client = CkanClient(flaky_ckan.url, ckan.apikey, backoff=0.05, attempts=8)
    with client:
        publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
    assert flaky_ckan.failures >= 5 and client.retries >= flaky_ckan.failures - 1
    assert ckan_state(ckan, spec.ckan_name) == reference_state
    assert_published_whole(ckan, conn, spec.ckan_name, fault_table)


def test_ckan_down_fails_after_retries_with_a_clear_error(fault_table, warehouse_url, organization,
                                                          unique_ckan_name) -> None:
    from civicflow_assets.publish.client import CkanUnavailable

    slept: list[float] = []
    spec = requests_spec(fault_table, unique_ckan_name("cf-down"), title=TITLE)
    with CkanClient("http://127.0.0.1:9", "token", attempts=4, backoff=1.0, sleep=slept.append) as client, \
            pytest.raises(CkanUnavailable, match="failed api_token_list 4 times"):
        publish_dataset(spec, make_context(warehouse_url, client, organization, None))
    assert len(slept) == 3 and slept[0] < slept[1] < slept[2]  # exponential backoff


def test_a_bad_token_fails_naming_the_setting(fault_table, warehouse_url, ckan, organization, datastore_url,
                                              unique_ckan_name) -> None:
    spec = requests_spec(fault_table, unique_ckan_name("cf-badtoken"), title=TITLE)
    with CkanClient(ckan.address, "not-a-token") as client:
        with pytest.raises(CkanAuthError, match="CIVICFLOW_CKAN_API_TOKEN") as error:
            publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
        assert "api_token_list" in str(error.value)
        assert client.call("status_show")["ckan_version"]  # reads still work: only writes need the token
    with pytest.raises(NotFound):
        ckan.action.package_show(id=spec.ckan_name)


def test_through_the_api_when_the_datastore_database_is_out_of_reach(warehouse_url, ckan, organization, conn,
                                                                      unique_ckan_name) -> None:
    fault_table = "requests_api"
    make_requests_table(conn, fault_table, every=13)
    spec = requests_spec(fault_table, unique_ckan_name("cf-api"), title=TITLE)
    with make_client(ckan) as client:
        first = publish_dataset(spec, make_context(warehouse_url, client, organization, None))
        assert next(o for o in first.outcomes if o.role == "datastore").method == "api"
        assert_published_whole(ckan, conn, spec.ckan_name, fault_table)
        with conn.cursor() as cur:
            last = f'select "RequestId" from fixture.{fault_table} order by 1 desc'
            cur.execute(f'update fixture.{fault_table} set "ModifiedDate" = now(), "Status" = \'other\' '
                        f'where "RequestId" in ({last} limit 12)')
            cur.execute(f'delete from fixture.{fault_table} where "RequestId" in ({last} limit 3)')
        conn.commit()
        delta = publish_dataset(spec, make_context(warehouse_url, client, organization, None))
        datastore = next(o for o in delta.outcomes if o.role == "datastore")
        assert (datastore.rows_inserted, datastore.rows_updated, datastore.rows_deleted) == (0, 9, 3)
        assert_published_whole(ckan, conn, spec.ckan_name, fault_table)


def test_a_delete_whose_answer_was_lost_is_done_when_retried(flaky_ckan, ckan, organization,
                                                              unique_ckan_name) -> None:
    package = ckan.action.package_create(name=unique_ckan_name("cf-lost-delete"), owner_org=organization.name)
    resource = ckan.action.resource_create(package_id=package["id"], name="to delete", url="http://example.invalid/")
    flaky_ckan.calls = 4  # the next call reaches CKAN and loses its answer; its retries answer Not Found
    with CkanClient(flaky_ckan.url, ckan.apikey, backoff=0.05, attempts=8) as client:
        assert client.call("resource_delete", {"id": resource["id"]}) is None
        assert client.retries >= 1
    assert not ckan.action.package_show(id=package["id"])["resources"]


def test_an_upload_is_streamed_from_disk_and_arrives_whole(ckan, organization, unique_ckan_name, tmp_path) -> None:
    upload = tmp_path / "large.bin"
    upload.write_bytes(os.urandom(64 << 20))
    with CkanClient(ckan.address, ckan.apikey) as client:
        owner = ensure_organization(client, organization)["id"]
    package = ckan.action.package_create(name=unique_ckan_name("cf-streamed"), owner_org=owner)
    handles = []

    def files() -> dict:
        handles.append(upload.open("rb"))
        return {"upload": (upload.name, handles[-1])}

    tracemalloc.start()
    try:
        with CkanClient(ckan.address, ckan.apikey) as client:
            resource = client.call("resource_create", {"package_id": package["id"], "name": "large"}, files=files)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        for handle in handles:
            handle.close()
    assert peak < 8 << 20  # a few blocks of 1 MB; requests alone reads the 64 MB whole, then builds the body beside
    downloaded = requests.get(resource["url"], headers={"Authorization": ckan.apikey}, timeout=120)
    assert hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(upload.read_bytes()).hexdigest()
