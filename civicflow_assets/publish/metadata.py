"""A dataset's CKAN metadata, from the one declaration of it (datasets.yaml + catalog.yaml): title, description,
tags, open license, owner (P1), update frequency and method (P3), temporal and spatial coverage, the conversion
and the software versions used (P4), the check summary and the waived rules with their reasons."""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.publish.table import TIMEZONE, PublishedTable

ACCRUAL_PERIODICITY = {"hourly": "R/PT1H", "daily": "R/P1D", "weekly": "R/P1W", "monthly": "R/P1M",
                       "quarterly": "R/P3M", "yearly": "R/P1Y", "annually": "R/P1Y", "annual": "R/P1Y"}
PACKAGES = ("civicflow", "dagster", "dagster-dbt", "dbt-core", "dbt-postgres", "ckanapi", "psycopg2-binary",
            "openpyxl", "pyogrio", "geopandas", "great-expectations")
MANAGED = "civicflow_managed"


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    blocking: bool
    description: str = ""
    waived: str = ""


@dataclass(frozen=True)
class CheckSummary:
    """What the checks said about the data being published; `available` is False outside Dagster."""

    checks: tuple[CheckResult, ...] = ()
    available: bool = True

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.blocking and not c.passed]

    def text(self) -> str:
        if not self.available:
            return "no check results: published outside the Dagster pipeline"
        passed = sum(c.passed for c in self.checks)
        warnings = sum(not c.passed and not c.blocking for c in self.checks)
        waived = sum(bool(c.waived) for c in self.checks)
        return (f"{len(self.checks)} checks: {passed} passed ({waived} by waiver), "
                f"{len(self.blocking_failures)} blocking failures, {warnings} warnings")

    def as_json(self) -> dict[str, Any]:
        return {"summary": self.text(), "checks": [c.__dict__ for c in self.checks]}


def accrual_periodicity(update_frequency: str) -> str:
    words = update_frequency.lower().replace(",", " ").split()
    return next((ACCRUAL_PERIODICITY[w] for w in words if w in ACCRUAL_PERIODICITY), "irregular")


def software_versions(conn: psycopg2.extensions.connection, ckan_version: str | None = None) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    with conn.cursor() as cur:
        cur.execute("select current_setting('server_version'), "
                    "(select extversion from pg_extension where extname = 'postgis')")
        versions["postgresql"], postgis = cur.fetchone()
    if postgis:
        versions["postgis"] = postgis
    try:
        import pyogrio

        versions["gdal"] = pyogrio.__gdal_version_string__
    except ImportError:
        pass
    if ckan_version:
        versions["ckan"] = ckan_version
    return versions


@dataclass(frozen=True)
class Coverage:
    temporal: str  # ISO 8601 interval, or ""
    spatial: str  # "west,south,east,north", or a place name
    rows: int
    data_modified: str  # the latest modification time of any row, ISO 8601, or ""


def coverage(conn: psycopg2.extensions.connection, table: PublishedTable) -> Coverage:
    spec = table.spec
    temporal = spec.temporal_field or spec.created_field
    names = {c.name for c in table.columns}
    select = [sql.SQL("count(*) as n")]
    if temporal in names:
        select.append(sql.SQL("min({t}) as t0, max({t}) as t1").format(t=sql.Identifier(temporal)))
    if table.geometry:
        select.append(sql.SQL("st_extent(st_transform(st_setsrid({g}, coalesce(nullif(st_srid({g}), 0), 4326)), "
                              "4326)) as e").format(g=sql.Identifier(table.geometry.name)))
    if spec.modified_field:
        select.append(sql.SQL("max({m}) as m").format(m=sql.Identifier(spec.modified_field)))
    query = sql.SQL("select {} from {} t").format(sql.SQL(", ").join(select), table.relation)
    with conn.cursor() as cur:
        cur.execute("set local time zone %s", (TIMEZONE,))
        cur.execute(query)
        row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    t0, t1 = row.get("t0"), row.get("t1")
    temporal_text = f"{_iso(t0)}/{_iso(t1)}" if t0 is not None and t1 is not None else ""
    spatial = spec.spatial
    if row.get("e"):
        box = row["e"].removeprefix("BOX(").removesuffix(")").replace(",", " ").split()
        west, south, east, north = (round(float(v), 5) for v in box)
        spatial = f"{west},{south},{east},{north}"
    modified = row.get("m")
    return Coverage(temporal_text, spatial, row["n"], modified.isoformat() if modified else "")


def _iso(value: Any) -> str:
    if hasattr(value, "date") and callable(value.date):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass
class PackageMetadata:
    fields: dict[str, Any]
    extras: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {**self.fields, "extras": [{"key": k, "value": v} for k, v in sorted(self.extras.items())]}

    def differs_from(self, current: dict[str, Any]) -> bool:
        for key, value in self.fields.items():
            if key == "tags":
                if sorted(t["name"] for t in value) != sorted(t["name"] for t in current.get("tags", [])):
                    return True
            elif (current.get(key) or "") != (value or ""):
                return True
        have = {e["key"]: e["value"] for e in current.get("extras", [])}
        return have != self.extras


def package_metadata(table: PublishedTable, organization_id: str, cover: Coverage, versions: dict[str, str],
                     checks: CheckSummary) -> PackageMetadata:
    spec = table.spec
    automatic = spec.publication.lower().startswith("auto")
    method = ("automatic: a Dagster sensor publishes when the published table is rebuilt and every blocking check "
              "on it passed; a daily schedule publishes as a fallback" if automatic else "manual")
    waivers = "; ".join(f"{rule}: {reason}" for rule, reason in sorted(spec.waivers.items())) or "none"
    formats = "CSV (RFC 4180, UTF-8), JSON, " + ("GeoJSON, KML, zipped shapefile, " if table.geometry else "") + \
              ("ODS, XLSX, " if spec.spreadsheets else "") + "and a CKAN DataStore table with typed fields"
    conversion = (f"Built by dbt from the source systems' extracts ({spec.source_model or spec.table_name} -> "
                  f"{spec.table}, privacy rules applied), then exported by CivicFlow's publisher as {formats}; "
                  f"timestamps as ISO 8601 with their offset ({TIMEZONE}), geometry in EPSG:4326 (WKT in tables). "
                  "The field map resource lists each field's source and transformation.")
    notes = "\n\n".join(p for p in (
        spec.description,
        f"**Owner (P1):** {spec.owner}",
        f"**Updated (P3):** {spec.update_frequency}, {method}.",
        f"**Quality checks:** {checks.text()}. **Waived rules:** {waivers}",
        f"**Conversion (P4):** {conversion}",
    ) if p)
    fields = {
        "name": spec.ckan_name,
        "title": spec.title,
        "owner_org": organization_id,
        "notes": notes,
        "license_id": spec.license_id,
        "author": spec.owner,
        "maintainer": spec.contact_name,
        "maintainer_email": spec.contact_email,
        "version": versions.get("civicflow", ""),
        "tags": [{"name": t} for t in spec.tags],
    }
    extras = {
        MANAGED: "true",
        "civicflow_dataset": spec.name,
        "owner": spec.owner,
        "update_frequency": spec.update_frequency,
        "accrual_periodicity": accrual_periodicity(spec.update_frequency),
        "publication_method": method,
        "temporal_coverage": cover.temporal,
        "spatial_coverage": cover.spatial,
        "data_modified": cover.data_modified,
        "row_count": str(cover.rows),
        "grain": spec.grain,
        "primary_key": table.key_column,
        "conversion": conversion,
        "software_versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "check_summary": checks.text(),
        "waivers": waivers,
        "language": spec.language,
        "license_url": spec.license_url,
    }
    return PackageMetadata(fields, {k: v for k, v in extras.items() if v})
