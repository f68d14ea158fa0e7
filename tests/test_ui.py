"""`civicflow ui` serves the whole asset graph and stops without leaving processes behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import psutil
import pytest

from civicflow_assets.settings import REPO_ROOT

CIVICFLOW = REPO_ROOT / ".civicflow" / "venv" / "bin" / "civicflow"
ASSET_NODES = json.dumps({"query": "{ assetNodes { assetKey { path } groupName"
                                    " assetChecksOrError { ... on AssetChecks { checks { name } } } } }"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _asset_nodes(port: int, timeout: float = 180.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=ASSET_NODES.encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                nodes = json.load(response)["data"]["assetNodes"]
            if nodes:
                return nodes
        except (OSError, KeyError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the Dagster UI did not serve the asset graph")
        time.sleep(1)


@pytest.mark.slow
def test_ui_serves_raw_and_staging_and_stops_cleanly_twice(warehouse_url: str, tmp_path) -> None:
    env = {**os.environ, "CIVICFLOW_DATA_DIR": str(tmp_path), "CIVICFLOW_STATE_DIR": str(tmp_path / "state")}
    for _ in range(2):
        port = _free_port()
        process = subprocess.Popen([str(CIVICFLOW), "ui", "--port", str(port)], env=env, start_new_session=True)
        try:
            nodes = _asset_nodes(port)
            children = psutil.Process(process.pid).children(recursive=True)
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        groups = {n["groupName"] for n in nodes}
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {"raw", "staging"} <= groups
        assert {"raw/service_requests", "staging/stg_city311__service_requests"} <= keys
        assert children
        time.sleep(1)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
