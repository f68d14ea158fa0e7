"""What gets published, and how: checks/datasets.yaml (what each dataset is) joined with catalog.yaml (how it goes
out on CKAN). One `DatasetSpec` per dataset; tests build their own for fixture tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
CKAN_NAME = re.compile(r"^[a-z0-9_-]{2,100}$")
SPATIAL_FORMATS = ("geojson", "kml", "shapefile")
SPREADSHEET_FORMATS = ("ods", "xlsx")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Organization:
    name: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """One published dataset: a table in the warehouse and the CKAN dataset it becomes."""

    name: str
    table: str  # schema.table
    ckan_name: str
    title: str
    description: str
    owner: str  # P1
    update_frequency: str  # P3
    publication: str = "automatic"  # P3
    key: tuple[str, ...] = ()
    modified_field: str | None = None  # U2: the delta watermark
    created_field: str | None = None
    temporal_field: str | None = None
    geometry_field: str | None = None  # None: the table's first geometry column, if any
    grain: str = "record"
    source_model: str | None = None
    tags: tuple[str, ...] = ()
    waivers: dict[str, str] = field(default_factory=dict)
    spreadsheets: bool = False
    spreadsheet_max_rows: int = 200_000
    # None: the files follow every change. N: a delta publication rebuilds them only once they are N hours old
    # (the DataStore API stays current); a table too big to rewrite every hour waits for the daily one.
    files_refresh_hours: float | None = None
    license_id: str = "cc-zero"
    license_url: str = "https://creativecommons.org/publicdomain/zero/1.0/"
    contact_name: str = ""
    contact_email: str = ""
    spatial: str = ""
    language: str = "en-US"
    upstream: tuple[tuple[str, ...], ...] = ()  # Dagster asset keys the publication depends on

    def __post_init__(self) -> None:
        if not CKAN_NAME.match(self.ckan_name):
            raise CatalogError(f"{self.name}: CKAN name {self.ckan_name!r} must be 2-100 of a-z, 0-9, - and _")
        if not self.key:
            raise CatalogError(f"{self.name}: no key (id_fields in datasets.yaml, or key in catalog.yaml)")
        if "." not in self.table:
            raise CatalogError(f"{self.name}: table must be schema.table, not {self.table!r}")

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def upstream_keys(self) -> tuple[tuple[str, ...], ...]:
        return self.upstream or ((self.schema_name, self.table_name),)


@dataclass(frozen=True)
class CatalogDataset:
    """The CKAN dataset that carries data.json."""

    ckan_name: str
    title: str
    description: str


@dataclass(frozen=True)
class Catalog:
    organization: Organization
    datasets: dict[str, DatasetSpec]
    catalog: CatalogDataset
    defaults: dict[str, Any] = field(default_factory=dict)


def load_catalog(path: Path = CATALOG_PATH, datasets_path: Path | None = None) -> Catalog:
    """catalog.yaml over checks/datasets.yaml: every dataset declared there is published."""
    from civicflow_assets.checks.config import load_datasets

    raw = yaml.safe_load(path.read_text()) or {}
    defaults = dict(raw.get("defaults") or {})
    how = raw.get("datasets") or {}
    declared = load_datasets(datasets_path)
    unknown = sorted(set(how) - set(declared))
    if unknown:
        raise CatalogError(f"{path}: {unknown} are not declared in checks/datasets.yaml")
    specs = {}
    for name, dataset in declared.items():
        extra = how.get(name) or {}
        key = tuple(extra.get("key") or dataset.id_fields)
        specs[name] = DatasetSpec(
            name=name,
            table=dataset.published_table,
            ckan_name=extra.get("ckan_name") or name.replace("_", "-"),
            title=dataset.title,
            description=dataset.description.strip(),
            owner=dataset.owner,
            update_frequency=dataset.update_frequency,
            publication=dataset.publication,
            key=key,
            modified_field=dataset.modified_field,
            created_field=dataset.created_field,
            temporal_field=extra.get("temporal_field") or dataset.created_field,
            geometry_field=extra.get("geometry_field") or dataset.geometry_field,
            grain=dataset.grain,
            source_model=dataset.source_model,
            tags=tuple(str(t) for t in extra.get("tags") or ()),
            waivers=dict(dataset.waivers),
            spreadsheets=bool(extra.get("spreadsheets", False)),
            spreadsheet_max_rows=int(extra.get("spreadsheet_max_rows", defaults.get("spreadsheet_max_rows", 200_000))),
            files_refresh_hours=extra.get("files_refresh_hours"),
            license_id=extra.get("license_id", defaults.get("license_id", "cc-zero")),
            license_url=extra.get("license_url", defaults.get("license_url", "")),
            contact_name=extra.get("contact_name", defaults.get("contact_name", "")),
            contact_email=extra.get("contact_email", defaults.get("contact_email", "")),
            spatial=extra.get("spatial", defaults.get("spatial", "")),
            language=extra.get("language", defaults.get("language", "en-US")),
            upstream=tuple(tuple(k) for k in extra.get("upstream") or ()),
        )
    org = raw.get("organization") or {}
    if not org.get("name"):
        raise CatalogError(f"{path}: organization.name is required")
    cat = raw.get("catalog") or {}
    return Catalog(
        organization=Organization(org["name"], org.get("title", org["name"]), (org.get("description") or "").strip()),
        datasets=specs,
        catalog=CatalogDataset(cat.get("ckan_name", "civicflow-data-json"), cat.get("title", "data.json"),
                               (cat.get("description") or "").strip()),
        defaults=defaults,
    )
