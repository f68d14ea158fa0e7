"""Shared by the publication tests (load with `pytest_plugins = ["tests.test_publish_fixtures"]`; no tests here):
published tables made of real Chattanooga 311 rows, a DatasetSpec for them, and readers of what CKAN holds."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import io
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
import requests
from ckanapi import CKANAPIError, RemoteCKAN
from psycopg2 import sql

from civicflow_assets.publish.catalog import Catalog, CatalogDataset, DatasetSpec, Organization
from civicflow_assets.publish.ckan_server import ckan_server, external_ckan
from civicflow_assets.publish.client import CkanClient
from civicflow_assets.publish.publisher import PublishContext
from civicflow_assets.publish.resources import local_datastore_write_url
from civicflow_assets.publish.table import TIMEZONE
from tests.shared_data import shared

pytest_plugins = ["tests.ckan_fixtures"]

POTHOLES = ("data", "chattanooga", "311", "potholes_distressed_pavement_2x73-xesh.csv")
TIMESTAMP = "MM/DD/YYYY HH12:MI:SS AM"

LANDING_SQL = """
create schema if not exists fixture;
create table if not exists fixture.potholes_text (service_request_key text, created_date text, request_type text,
  description text, request_type_code text, status_code text, intake_form text, days_to_complete text,
  sla_fy_2019 text, on_time_indicator text, completed_at text, due_at text, ispublic text, council_district text,
  loc text);
"""

# The shape of publish.pub_service_requests (CamelCase fields, timestamptz, a generalized point), from real rows.
TABLE_SQL = f"""
create table {{table}} as
with typed as (
    select *,
        to_timestamp(created_date, '{TIMESTAMP}') as created,
        to_timestamp(nullif(completed_at, ''), '{TIMESTAMP}') as closed,
        to_timestamp(nullif(due_at, ''), '{TIMESTAMP}') as due,
        row_number() over (order by service_request_key) as n
    from fixture.potholes_text
)
select
    'chattanooga_311_potholes:' || service_request_key as "RequestId",
    'chattanooga_311_potholes'::text as "SourceSystem",
    service_request_key as "ServiceRequestId",
    case request_type when 'Pothole' then 'Potholes' else request_type end as "RequestType",
    nullif(request_type_code, '') as "RequestTypeCode",
    case when status_code in ('O-CLOSED', 'CLOSED') then 'closed'
         when status_code in ('O-NEW', 'O-OPEN') then 'open' else 'other' end as "Status",
    nullif(status_code, '') as "StatusCode",
    nullif(intake_form, '') as "IntakeChannel",
    created as "CreatedDate",
    due as "DueDate",
    closed as "ClosedDate",
    greatest(created, closed) as "ModifiedDate",
    date_trunc('month', created)::date as "CreatedMonth",
    nullif(days_to_complete, '')::numeric as "DaysToComplete",
    nullif(sla_fy_2019, '')::int as "SlaDays",
    case on_time_indicator when 'Yes' then true when 'No' then false end as "OnTime",
    nullif(council_district, '') as "CouncilDistrict",
    st_snaptogrid(st_geomfromtext(nullif(loc, ''), 4326), 0.001)::geometry(Point, 4326) as "GeneralizedLocation",
    description as "Description"
from typed
where n % {{every}} = 0
"""


def make_requests_table(conn: psycopg2.extensions.connection, table: str, every: int = 3) -> int:
    """fixture.<table>: every `every`-th real pothole request (34,335 in the export)."""
    with conn.cursor() as cur:
        cur.execute(LANDING_SQL)
        cur.execute("select count(*) from fixture.potholes_text")
        if cur.fetchone()[0] == 0:
            with shared(*POTHOLES).open("rb") as handle:
                cur.copy_expert("copy fixture.potholes_text from stdin with (format csv, header true)", handle)
        cur.execute("set time zone %s", (TIMEZONE,))
        cur.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("fixture", table)))
        cur.execute(sql.SQL(TABLE_SQL.format(table="{t}", every=every)).format(t=sql.Identifier("fixture", table)))
        cur.execute(sql.SQL("alter table {} add primary key (\"RequestId\")").format(sql.Identifier("fixture", table)))
        cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("fixture", table)))
        count = cur.fetchone()[0]
    conn.commit()
    return count


def requests_spec(table: str, ckan_name: str, **overrides: Any) -> DatasetSpec:
    values: dict[str, Any] = dict(
        name=table, table=f"fixture.{table}", ckan_name=ckan_name, title=f"Pothole requests ({ckan_name})",
        description="Real Chattanooga 311 pothole requests, for the publication tests.",
        owner="City of Chattanooga 311 Call Center (Public Works)", update_frequency="daily", key=("RequestId",),
        modified_field="ModifiedDate", created_field="CreatedDate", temporal_field="CreatedDate",
        geometry_field="GeneralizedLocation", tags=("311", "potholes"), spreadsheets=True,
        waivers={"C2": "Test fixture: request type descriptions are not joined in this table."},
        contact_name="Open data team", contact_email="open-data@civicflow.invalid", spatial="Chattanooga, Tennessee",
    )
    values.update(overrides)
    return DatasetSpec(**values)


def catalog_of(organization: Organization, *specs: DatasetSpec, ckan_name: str = "civicflow-data-json") -> Catalog:
    return Catalog(organization, {s.name: s for s in specs},
                   CatalogDataset(ckan_name, "Test catalog (data.json)", "The publication tests' catalog."),
                   {"license_id": "cc-zero"})


@pytest.fixture(scope="session")
def datastore_url(ckan: RemoteCKAN) -> str | None:
    return None if external_ckan() else local_datastore_write_url()


@pytest.fixture(scope="session")
def organization(ckan: RemoteCKAN, unique_ckan_name: Callable[[str], str]) -> Iterator[Organization]:
    org = Organization(unique_ckan_name("cf-pub-org"), "CivicFlow Publication Tests", "Made by tests/test_publish_*.")
    yield org
    with contextlib.suppress(CKANAPIError, requests.RequestException):
        for name in ckan.action.package_list():
            package = ckan.action.package_show(id=name)
            if (package.get("organization") or {}).get("name") == org.name:
                ckan.action.dataset_purge(id=package["id"])
        ckan.action.organization_purge(id=org.name)


def make_client(ckan: RemoteCKAN, url: str | None = None, **kwargs: Any) -> CkanClient:
    return CkanClient(url or ckan.address, ckan.apikey, backoff=kwargs.pop("backoff", 0.05), **kwargs)


def make_context(warehouse_url: str, client: CkanClient, organization: Organization, datastore_url: str | None,
                 **kwargs: Any) -> PublishContext:
    return PublishContext(warehouse_url=warehouse_url, client=client, organization=organization,
                          datastore_url=datastore_url, **kwargs)


# -- reading back


def datastore_rows(ckan: RemoteCKAN, resource_id: str, key: str) -> list[dict[str, Any]]:
    rows, offset = [], 0
    while True:
        page = ckan.action.datastore_search(resource_id=resource_id, limit=10_000, offset=offset, sort=f'"{key}"')
        rows.extend(page["records"])
        offset += len(page["records"])
        if not page["records"] or offset >= page["total"]:
            return rows


def table_rows(conn: psycopg2.extensions.connection, table: str, key: str = "RequestId") -> list[dict[str, Any]]:
    """The table as published: geometry as WKT, in key order (as text, like the DataStore sorts)."""
    relation = sql.Identifier("fixture", table)
    with conn.cursor() as cur:
        cur.execute("set time zone %s", (TIMEZONE,))
        cur.execute("select a.attname, t.typname = 'geometry' from pg_attribute a join pg_type t on t.oid = a.atttypid "
                    "where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum",
                    (relation.as_string(cur),))
        columns = cur.fetchall()
        select = sql.SQL(", ").join(
            sql.SQL("st_astext({c}) as {c}" if is_geometry else "{c}").format(c=sql.Identifier(name))
            for name, is_geometry in columns)
        cur.execute(sql.SQL("select {} from {} order by {} collate \"C\"").format(select, relation,
                                                                                  sql.Identifier(key)))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.commit()
    return rows


def normalized(value: Any) -> Any:
    """A value as comparable across the DataStore's JSON, CSV text and psycopg2's Python types."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return decimal.Decimal(str(value)).normalize()
    if isinstance(value, str):
        for parse in (_timestamp,):
            parsed = parse(value)
            if parsed is not None:
                return parsed
        if value in ("true", "false"):
            return value == "true"
        with contextlib.suppress(decimal.InvalidOperation):
            if value.strip() and value.strip()[0] in "-0123456789" and value.replace(".", "", 1).lstrip("-").isdigit():
                return decimal.Decimal(value).normalize()
    return value


def _timestamp(value: str) -> dt.datetime | None:
    if len(value) < 19 or value[4] != "-" or value[10] not in "T ":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # the DataStore prints timestamptz in its session zone, UTC here
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: normalized(v) for k, v in row.items() if not k.startswith("_")} for row in rows]


def csv_rows(url: str) -> list[dict[str, Any]]:
    response = requests.get(url, timeout=120)
    response.raise_for_status()
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def managed_resources(ckan: RemoteCKAN, ckan_name: str) -> dict[str, list[dict[str, Any]]]:
    package = ckan.action.package_show(id=ckan_name)
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in package["resources"]:
        found.setdefault(resource.get("civicflow_role", "?"), []).append(resource)
    return found


def ckan_state(ckan: RemoteCKAN, ckan_name: str) -> dict[str, Any]:
    """What a citizen sees, minus timestamps: resources by role with their content hashes, and the metadata."""
    package = ckan.action.package_show(id=ckan_name)
    extras = {e["key"]: e["value"] for e in package["extras"]}
    return {
        "resources": sorted((r.get("civicflow_role"), r["name"], r.get("civicflow_content_hash"), r["format"])
                            for r in package["resources"]),
        "extras": {k: v for k, v in extras.items() if k != "software_versions"},
        "title": package["title"],
        "tags": sorted(t["name"] for t in package["tags"]),
    }


def local_ckan_running() -> bool:
    return external_ckan() is not None or ckan_server().is_running()
