"""The CKAN a publication writes to, as a Dagster resource: the local portal (started on first use) unless
CIVICFLOW_CKAN_URL + CIVICFLOW_CKAN_API_TOKEN name another one."""

from __future__ import annotations

import configparser
import contextlib

import psycopg2
from dagster import ConfigurableResource

from civicflow_assets.publish.ckan_server import SYSADMIN, ckan_connection, ckan_server, external_ckan
from civicflow_assets.publish.client import CkanClient


def local_datastore_write_url() -> str | None:
    """The local CKAN's `ckan.datastore.write_url`, so that loads can COPY straight into its DataStore."""
    server = ckan_server()
    if not server.ini_file.exists():
        return None
    ini = configparser.RawConfigParser(strict=False)
    ini.read(server.ini_file)
    return ini.get("app:main", "ckan.datastore.write_url", fallback=None)


def reachable(url: str | None) -> bool:
    if not url:
        return False
    try:
        with contextlib.closing(psycopg2.connect(url, connect_timeout=5)):
            return True
    except psycopg2.OperationalError:
        return False


class CkanResource(ConfigurableResource):
    """Empty url/token: the configured external CKAN, else the local one. `datastore_write_url`: the DataStore
    database for server-side COPY loads; empty means the local CKAN's, and none at all for an external CKAN
    (then loads go through datastore_upsert)."""

    url: str = ""
    api_token: str = ""
    user: str = SYSADMIN
    datastore_write_url: str = ""
    attempts: int = 6
    backoff_seconds: float = 0.5

    def connection(self) -> tuple[str, str]:
        if self.url and self.api_token:
            return self.url, self.api_token
        return ckan_connection()

    def client(self) -> CkanClient:
        url, token = self.connection()
        return CkanClient(url, token, user=self.user, attempts=self.attempts, backoff=self.backoff_seconds)

    def datastore_url(self) -> str | None:
        if self.datastore_write_url:
            return self.datastore_write_url
        if (self.url and self.api_token) or external_ckan():
            return None
        return local_datastore_write_url()
