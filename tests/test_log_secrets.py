"""Tokens and passwords never appear in logs or output: real clients, a real run, the real CLI."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, urlunparse

import pytest
from dagster import DagsterInstance, materialize

from civicflow_assets import raw_assets, redaction
from civicflow_assets.database import PostgresResource
from civicflow_assets.publish.client import CkanClient, CkanUnavailable
from civicflow_assets.settings import REPO_ROOT
from civicflow_assets.sources.census import CensusClient
from civicflow_assets.sources.http import SourceError, make_session
from civicflow_assets.sources.mapping import load_mappings
from civicflow_assets.sources.resources import SourceFilesResource
from tests.shared_data import shared

DB_PASSWORD = "pw-Zq81-not-for-logs"
CENSUS_KEY = "census-7f3a9c2e5b1d"
# The shape of a CKAN API token (a JWT); the same value is configured as the environment would hold it.
CKAN_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJjaXZpY2Zsb3ctdGVzdCJ9.c2lnbmF0dXJlLW5vdC1mb3ItbG9ncw"
SECRETS = (DB_PASSWORD, CENSUS_KEY, CKAN_TOKEN)
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, every request is refused


def _with_password(url: str) -> str:
    """The warehouse URL with a password: the embedded cluster trusts loopback, so any password connects."""
    parts = urlparse(url)
    return urlunparse(parts._replace(netloc=f"{parts.username}:{DB_PASSWORD}@{parts.hostname}:{parts.port}"))


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENSUS_API_KEY", CENSUS_KEY)
    monkeypatch.setenv("CIVICFLOW_CKAN_API_TOKEN", CKAN_TOKEN)


class _EchoingProxy(BaseHTTPRequestHandler):
    """A failing proxy whose error page quotes the request headers, token included (some do)."""

    def do_POST(self) -> None:
        body = json.dumps({"error": f"upstream unavailable; Authorization: {self.headers['Authorization']}"}).encode()
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echoing_proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingProxy)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _census_fetch_with_retries() -> None:
    client = CensusClient(f"{CLOSED_PORT_URL}/data", api_key=CENSUS_KEY, session=make_session(retries=2, backoff=0))
    with pytest.raises(SourceError):
        client.fetch(2022, "acs/acs5", ["B01001_001E"], "tract:*", "state:47")


def test_urllib3_retry_warnings_would_leak_the_census_key_without_redaction(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # The control: urllib3 quotes the request URL, `key=` included, when it retries. Redaction is what stops it.
    factory = logging.getLogRecordFactory()
    assert isinstance(factory, redaction.RedactingRecordFactory)
    monkeypatch.setattr(logging, "_logRecordFactory", factory.wrapped)
    with caplog.at_level(logging.WARNING):
        _census_fetch_with_retries()
    assert CENSUS_KEY in caplog.text


def test_census_retries_log_the_url_without_the_key(caplog: pytest.LogCaptureFixture, secret_env: None) -> None:
    with caplog.at_level(logging.WARNING):
        _census_fetch_with_retries()
    assert "Retrying" in caplog.text and "key=***" in caplog.text
    _assert_no_secret(caplog.text)


def test_ckan_client_retry_warnings_and_error_never_show_the_token(
        caplog: pytest.LogCaptureFixture, echoing_proxy: str, secret_env: None) -> None:
    client = CkanClient(echoing_proxy, CKAN_TOKEN, attempts=3, sleep=lambda seconds: None)
    with caplog.at_level(logging.WARNING), pytest.raises(CkanUnavailable) as failure:
        client.call("package_list")
    assert "HTTP 503" in caplog.text and "Authorization" in caplog.text  # the echoed headers were logged...
    _assert_no_secret(caplog.text)  # ...with the token masked
    logging.getLogger("civicflow.test").error("publication failed: %s", failure.value)
    _assert_no_secret(caplog.text)


def test_a_real_run_logs_progress_but_no_password_or_token(
        warehouse_url: str, secret_env: None, capfd: pytest.CaptureFixture[str]) -> None:
    mappings = {n: m for n, m in load_mappings([raw_assets.PACKAGE_DIR / "sources" / "mappings"]).items()
                if m.target == "fire_stations"}
    (fire_stations,) = raw_assets.file_assets(mappings)
    resources = {"postgres": PostgresResource(url=_with_password(warehouse_url)),
                 "source_files": SourceFilesResource(data_dirs=[str(shared("data", "chattanooga"))])}
    with DagsterInstance.ephemeral() as instance:
        result = materialize([fire_stations], resources=resources, instance=instance)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success
    progress = re.compile(r"raw\.fire_stations \(fire_stations\): (typed and inserted|merged) ([\d,]+)/\2 rows")
    assert any(progress.search(m) for m in messages)  # the landing's progress lines are in the run log
    out, err = capfd.readouterr()
    _assert_no_secret(*messages, out, err)


def test_cli_db_status_hides_the_password(warehouse_url: str) -> None:
    env = {**os.environ, "CIVICFLOW_DATABASE_URL": _with_password(warehouse_url)}
    result = subprocess.run([str(REPO_ROOT / ".civicflow" / "venv" / "bin" / "civicflow"), "db", "status"],
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    assert "external database" in result.stdout
    _assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://civicflow:s3cr%40t@db:5432/civicflow", "postgresql://civicflow:***@db:5432/civicflow"),
    ("host=db user=ckan password='two words' dbname=x", "host=db user=ckan password=*** dbname=x"),
    ("GET /data?get=B01&key=abc123&for=tract:*", "GET /data?get=B01&key=***&for=tract:*"),
    ("Authorization: eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJ4eHh4eHh4In0.c2lnbmF0dXJlLXh4", "Authorization: ***"),
    ("postgresql://civicflow@127.0.0.1:5432/civicflow", "postgresql://civicflow@127.0.0.1:5432/civicflow"),
])
def test_redact_shapes(text: str, expected: str) -> None:
    assert redaction.redact(text, secrets=()) == expected


def test_redact_environment_values() -> None:
    env = {"CIVICFLOW_OPEN311_API_KEY": "open311-secret-value", "CIVICFLOW_DATA_DIR": "/data/long/path",
           "CIVICFLOW_PG_PASSWORD": "x"}
    assert redaction.environment_secrets(env) == ["open311-secret-value"]  # too short to be a secret: "x"
    assert redaction.redact("sent open311-secret-value", redaction.environment_secrets(env)) == "sent ***"
