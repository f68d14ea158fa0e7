"""The Dagster UI in a real browser (Debian's headless Chromium driven by Playwright): the asset graph renders."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from civicflow_assets.settings import REPO_ROOT
from tests.test_ui import CIVICFLOW, _asset_nodes, _free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps calling hosts this machine cannot reach.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = REPO_ROOT / ".civicflow" / "screenshots" / "asset_graph.png"
GROUPS = ("raw", "staging", "marts", "publication")


@pytest.mark.slow
def test_the_asset_graph_renders_in_chromium(warehouse_url: str, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run `make install`")
    env = {**os.environ, "CIVICFLOW_DATA_DIR": str(tmp_path), "CIVICFLOW_STATE_DIR": str(tmp_path / "state")}
    port = _free_port()
    process = subprocess.Popen([str(CIVICFLOW), "ui", "--port", str(port)], env=env, start_new_session=True)
    try:
        nodes = _asset_nodes(port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"http://127.0.0.1:{port}/asset-groups", wait_until="networkidle", timeout=120_000)
            for group in GROUPS:
                page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
            page.wait_for_timeout(2000)  # let the graph layout settle before the picture
            skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog, shown late
            if skip.count():
                skip.first.click()
                skip.first.wait_for(state="hidden", timeout=10_000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    assert not errors, errors
    checked_groups = {n["groupName"] for n in nodes if n["assetChecksOrError"].get("checks")}
    assert set(GROUPS) <= checked_groups
    assert SCREENSHOT.stat().st_size > 10_000
