"""The README's main command, end to end on a small demo city."""

from __future__ import annotations

import os
import subprocess

from civicflow_assets.settings import REPO_ROOT
from tests.conftest import scalar


def test_civicflow_run_generates_the_demo_city_and_materializes_everything(warehouse_url, conn, tmp_path) -> None:
    env = {**os.environ, "CIVICFLOW_STATE_DIR": str(tmp_path), "CIVICFLOW_DEMO_REQUESTS": "3000"}
    env.pop("CIVICFLOW_DATA_DIR", None)
    result = subprocess.run([str(REPO_ROOT / ".civicflow" / "venv" / "bin" / "civicflow"), "run"], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Succeeded" in result.stdout
    assert (tmp_path / "demo" / "311" / "potholes_distressed_pavement_demo.csv").exists()
    assert scalar(conn, "select count(*) from raw.service_requests where _source_file like %s",
                  f"{tmp_path}%") == 3000
    assert scalar(conn, "select count(*) from staging.stg_city311__service_requests"
                        " where source_file like %s", f"{tmp_path}%") == 3000
