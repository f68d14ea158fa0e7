"""The CKAN portal for tests: `ckan`, one `ckanapi.RemoteCKAN` for the whole session, with the sysadmin's token.

It is the project's local CKAN (`.civicflow/ckan`, started once and stopped at the end if this session started
it), or the instance named by CIVICFLOW_CKAN_URL + CIVICFLOW_CKAN_API_TOKEN. Load it in a test module with

    pytest_plugins = ["tests.ckan_fixtures"]

and use `ckan.action.<name>(...)`; `ckan.address` is the URL and `ckan.apikey` the token. CKAN keeps its data
between sessions, so tests name what they create with `unique_ckan_name("prefix")`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from ckanapi import RemoteCKAN

from civicflow_assets.publish.ckan_server import ckan_connection, ckan_server, external_ckan

USER_AGENT = "civicflow-tests/1.0"


@pytest.fixture(scope="session")
def unique_ckan_name() -> Callable[[str], str]:
    """Makes CKAN names (lower case, digits, - and _) that no earlier session has used."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def ckan() -> Iterator[RemoteCKAN]:
    local = None if external_ckan() else ckan_server()
    started_here = local is not None and not local.is_running()
    url, token = ckan_connection()
    with RemoteCKAN(url, apikey=token, user_agent=USER_AGENT) as api:
        yield api
    if started_here:
        local.stop()
