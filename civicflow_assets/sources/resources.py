"""Dagster resources for the extract sources, configured from the environment through Definitions."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from civicflow_assets.sources.census import CensusClient
from civicflow_assets.sources.mapping import Mapping
from civicflow_assets.sources.open311 import Open311Client


class SourceFilesResource(ConfigurableResource):
    """Where file extracts are: one or more data folders, searched with each mapping's file patterns."""

    data_dirs: list[str]

    def files_for(self, mapping: Mapping) -> list[Path]:
        return mapping.find_files([Path(d) for d in self.data_dirs])


class Open311Resource(ConfigurableResource):
    base_url: str | None = None
    api_key: str | None = None
    jurisdiction_id: str | None = None
    timezone: str = "America/New_York"

    def client(self) -> Open311Client:
        if not self.base_url:
            raise ValueError("CIVICFLOW_OPEN311_URL is not set")
        return Open311Client(self.base_url, api_key=self.api_key, jurisdiction_id=self.jurisdiction_id,
                             tz=self.timezone)


class CensusResource(ConfigurableResource):
    base_url: str | None = None
    api_key: str | None = None
    year: int = 2022
    geo_in: str = "state:47+county:065"

    def client(self) -> CensusClient:
        if not self.base_url:
            raise ValueError("CIVICFLOW_CENSUS_API_URL is not set")
        return CensusClient(self.base_url, api_key=self.api_key)
