"""The README's main command, end to end on a small demo city."""

from __future__ import annotations

import os
import subprocess

from civicflow_assets.publish.catalog import load_catalog
from civicflow_assets.settings import REPO_ROOT
from tests.conftest import scalar


def test_civicflow_run_generates_the_demo_city_and_publishes_everything(warehouse_url, conn, ckan, tmp_path) -> None:
    # A fresh state folder (so the demo city is generated), publishing to the session's CKAN.
    env = {**os.environ, "CIVICFLOW_STATE_DIR": str(tmp_path), "CIVICFLOW_DEMO_REQUESTS": "3000",
           "CIVICFLOW_CKAN_URL": ckan.address, "CIVICFLOW_CKAN_API_TOKEN": ckan.apikey}
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

    catalog = load_catalog()
    assert f"Published on CKAN {ckan.address}" in result.stdout
    for spec in catalog.datasets.values():
        assert f"{ckan.address}/dataset/{spec.ckan_name}" in result.stdout
        package = ckan.action.package_show(id=spec.ckan_name)
        datastore = next(r for r in package["resources"] if r.get("datastore_active"))
        assert ckan.action.datastore_search(resource_id=datastore["id"], limit=0)["total"] == scalar(
            conn, f"select count(*) from {spec.table}")
