"""Publishing real Chattanooga rows to the real CKAN the project starts, and reading them back through ckanapi:
row for row, only what changed on a second publication, and the same final state after a crash and a rerun."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import psycopg2
import pytest
import requests
from ckanapi import RemoteCKAN

from civicflow_assets.publish import sync
from civicflow_assets.publish.catalog import DatasetSpec, Organization
from civicflow_assets.publish.publisher import Publication, publish_dataset
from tests.test_publish_fixtures import (
    ckan_state,
    comparable,
    csv_rows,
    datastore_rows,
    make_client,
    make_context,
    make_requests_table,
    managed_resources,
    requests_spec,
    table_rows,
)

pytest_plugins = ["tests.test_publish_fixtures"]

TABLE = "requests_main"


@pytest.fixture(scope="module")
def published(warehouse_url: str, ckan: RemoteCKAN, organization: Organization, datastore_url: str | None,
              unique_ckan_name: Callable[[str], str]) -> tuple[DatasetSpec, Publication]:
    with psycopg2.connect(warehouse_url) as conn:
        rows = make_requests_table(conn, TABLE, every=3)
    assert rows > 11_000
    spec = requests_spec(TABLE, unique_ckan_name("cf-requests"))
    with make_client(ckan) as client:
        publication = publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
    return spec, publication


def publish(spec: DatasetSpec, warehouse_url: str, ckan: RemoteCKAN, organization: Organization,
            datastore_url: str | None, **kwargs: Any) -> Publication:
    with make_client(ckan) as client:
        return publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url, **kwargs))


def outcome(publication: Publication, role: str):
    return next(o for o in publication.outcomes if o.role == role)


def test_first_publication_reads_back_row_for_row(published, ckan: RemoteCKAN, conn, datastore_url) -> None:
    spec, publication = published
    expected = table_rows(conn, TABLE)
    datastore = outcome(publication, "datastore")
    assert datastore.action == "created"
    assert datastore.rows_inserted == len(expected)
    assert datastore.method == ("copy" if datastore_url else "api")

    resources = managed_resources(ckan, spec.ckan_name)
    assert sorted(resources) == ["csv", "datastore", "geojson", "json", "kml", "ods", "shapefile", "xlsx"]
    assert all(len(found) == 1 for found in resources.values())
    resource_id = resources["datastore"][0]["id"]

    got = datastore_rows(ckan, resource_id, "RequestId")
    assert comparable(got) == comparable(expected)
    info = ckan.action.datastore_info(id=resource_id)
    types = {f["id"]: f["type"] for f in info["fields"]}
    assert types["CreatedDate"] == "timestamptz" and types["DaysToComplete"] == "numeric"
    assert types["OnTime"] == "bool" and types["CreatedMonth"] == "date" and types["GeneralizedLocation"] == "text"
    # The primary key is CKAN's: an upsert through the API finds the row by it.
    first = expected[0]["RequestId"]
    ckan.action.datastore_upsert(resource_id=resource_id, method="update", force=True,
                                 records=[{"RequestId": first, "Status": expected[0]["Status"]}])

    downloaded = csv_rows(resources["csv"][0]["url"])
    assert comparable(downloaded) == comparable(expected)
    assert downloaded[0]["CreatedDate"].endswith(("-05:00", "-04:00"))  # F5: ISO 8601 with the offset

    as_json = requests.get(resources["json"][0]["url"], timeout=60).json()
    assert comparable(as_json) == comparable(expected)


def test_full_text_is_what_ckans_own_trigger_computes(published, ckan: RemoteCKAN, datastore_url) -> None:
    if not datastore_url:
        pytest.skip("the DataStore database is out of reach: the rows went through datastore_upsert anyway")
    spec, _ = published
    resource_id = managed_resources(ckan, spec.ckan_name)["datastore"][0]["id"]
    query = f'select "RequestId", _full_text::text from "{resource_id}" order by "RequestId" limit 200'
    with contextlib.closing(psycopg2.connect(datastore_url)) as datastore, datastore.cursor() as cur:
        cur.execute(query)
        loaded = dict(cur.fetchall())
        # An upsert through CKAN's API makes its trigger compute _full_text afresh, from the same values.
        records = ckan.action.datastore_search(resource_id=resource_id, filters={"RequestId": list(loaded)},
                                               limit=len(loaded))["records"]
        ckan.action.datastore_upsert(resource_id=resource_id, method="upsert", force=True,
                                     records=[{k: v for k, v in r.items() if k != "_id"} for r in records])
        datastore.rollback()
        cur.execute(query)
        assert dict(cur.fetchall()) == loaded
    assert all(loaded.values())


def test_map_and_spreadsheet_files_hold_every_row(published, ckan: RemoteCKAN, conn, tmp_path) -> None:
    spec, _ = published
    expected = table_rows(conn, TABLE)
    resources = managed_resources(ckan, spec.ckan_name)
    geojson = requests.get(resources["geojson"][0]["url"], timeout=60).json()
    assert geojson["type"] == "FeatureCollection"
    assert len(geojson["features"]) == len(expected)
    located = [f for f in geojson["features"] if f["geometry"]]
    assert located and located[0]["geometry"]["type"] == "Point"
    assert "GeneralizedLocation" not in geojson["features"][0]["properties"]

    kml = requests.get(resources["kml"][0]["url"], timeout=60).content
    assert kml.count(b"<Placemark>") == len(expected)
    from xml.etree import ElementTree

    ElementTree.fromstring(kml)  # well-formed, free text and all

    import pyogrio

    shapefile = requests.get(resources["shapefile"][0]["url"], timeout=60).content
    with zipfile.ZipFile(io.BytesIO(shapefile)) as archive:
        names = archive.namelist()
    assert any(n.endswith(".shp") for n in names) and any(n.endswith("_fields.csv") for n in names)
    (tmp_path / "shapefile.zip").write_bytes(shapefile)
    shp = next(n for n in names if n.endswith(".shp"))
    frame = pyogrio.read_dataframe(f"/vsizip/{tmp_path / 'shapefile.zip'}/{shp}")
    assert len(frame) == len(expected)
    assert frame.geometry.notna().sum() == sum(1 for r in expected if r["GeneralizedLocation"])
    created = dict(zip(frame["RequestId"], frame["CreatedDat"], strict=True))  # F5: ISO 8601 text, offset kept
    assert created == {r["RequestId"]: r["CreatedDate"].isoformat() for r in expected}
    assert str(frame["CreatedMon"].dtype).startswith("datetime64")  # a dBASE date field
    fields = pyogrio.read_info(f"/vsizip/{tmp_path / 'shapefile.zip'}/{shp}")["fields"]
    assert "RequestId" in fields

    import openpyxl

    xlsx = requests.get(resources["xlsx"][0]["url"], timeout=60).content
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True).worksheets[0]
    assert sum(1 for _ in sheet.iter_rows()) == len(expected) + 1

    from odf.opendocument import load
    from odf.table import TableRow

    ods = requests.get(resources["ods"][0]["url"], timeout=60).content
    document = load(io.BytesIO(ods))
    assert len(document.spreadsheet.getElementsByType(TableRow)) == len(expected) + 1


def test_metadata_names_owner_frequency_conversion_and_checks(published, ckan: RemoteCKAN) -> None:
    spec, _ = published
    package = ckan.action.package_show(id=spec.ckan_name)
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras["owner"] == spec.owner  # P1
    assert extras["update_frequency"] == "daily" and extras["accrual_periodicity"] == "R/P1D"  # P3
    assert extras["publication_method"].startswith("automatic")
    assert "dagster" in extras["software_versions"] and "postgresql" in extras["software_versions"]  # P4
    assert "ISO 8601" in extras["conversion"]
    assert extras["waivers"].startswith("C2: Test fixture")
    assert extras["temporal_coverage"].startswith("2003-") and len(extras["spatial_coverage"].split(",")) == 4
    assert package["license_id"] == "cc-zero" and package["license_title"]
    assert sorted(t["name"] for t in package["tags"]) == ["311", "potholes"]
    assert package["organization"]["title"] == "CivicFlow Publication Tests"


def test_second_publication_sends_nothing(published, warehouse_url, ckan, organization, datastore_url) -> None:
    spec, _ = published
    before = ckan_state(ckan, spec.ckan_name)
    again = publish(spec, warehouse_url, ckan, organization, datastore_url)
    assert again.sent == []
    assert ckan_state(ckan, spec.ckan_name) == before


def test_one_percent_changed_and_new_rows_send_exactly_those(published, warehouse_url, ckan, organization,
                                                             datastore_url, conn) -> None:
    spec, _ = published
    total = len(table_rows(conn, TABLE))
    hundredth = total // 100
    with conn.cursor() as cur:
        cur.execute(f'''
            update fixture.{TABLE} set "Status" = 'closed', "ModifiedDate" = now()
            where "RequestId" in (select "RequestId" from fixture.{TABLE} order by md5("RequestId") limit %s)''',
                    (hundredth,))
        cur.execute(f'''
            insert into fixture.{TABLE}
            select 'chattanooga_311_potholes:new-' || "ServiceRequestId", "SourceSystem", 'new-' || "ServiceRequestId",
                   "RequestType", "RequestTypeCode", 'open', 'O-NEW', "IntakeChannel", now(), "DueDate", null, now(),
                   "CreatedMonth", null, "SlaDays", null, "CouncilDistrict", "GeneralizedLocation", "Description"
            from fixture.{TABLE} order by md5("RequestId" || 'new') limit %s''', (hundredth,))
        cur.execute(f'''delete from fixture.{TABLE} where "RequestId" in (
            select "RequestId" from fixture.{TABLE} where "Status" <> 'closed' and "RequestId" not like '%%:new-%%'
            order by "RequestId" limit 7)''')
    conn.commit()

    publication = publish(spec, warehouse_url, ckan, organization, datastore_url)
    datastore = outcome(publication, "datastore")
    assert (datastore.rows_inserted, datastore.rows_updated, datastore.rows_deleted) == (hundredth, hundredth, 7)
    assert publication.delta.full is False
    sent = {o.role for o in publication.sent}
    assert sent == {"metadata", "datastore", "csv", "json", "geojson", "kml", "shapefile", "ods", "xlsx"}

    resources = managed_resources(ckan, spec.ckan_name)
    expected = table_rows(conn, TABLE)
    assert comparable(datastore_rows(ckan, resources["datastore"][0]["id"], "RequestId")) == comparable(expected)
    assert comparable(csv_rows(resources["csv"][0]["url"])) == comparable(expected)
    # Full-text search sees the new rows: _full_text was computed as CKAN computes it.
    found = ckan.action.datastore_search(resource_id=resources["datastore"][0]["id"], q="new", limit=1)
    assert found["total"] >= hundredth
    if datastore_url:  # the delta went in by SQL: every row's _full_text is what CKAN's trigger makes of it
        with contextlib.closing(psycopg2.connect(datastore_url)) as datastore, datastore.cursor() as cur:
            cur.execute(f"""select count(*) from "{resources['datastore'][0]['id']}" t
                            where _full_text is distinct from (select to_tsvector(string_agg(value, ' '))
                            from json_each_text(row_to_json(t.*)) where key not like '\\_%')""")
            assert cur.fetchone()[0] == 0

    assert publish(spec, warehouse_url, ckan, organization, datastore_url).sent == []


def test_files_with_a_refresh_window_wait_for_it_while_the_datastore_follows(
        warehouse_url, ckan, organization, datastore_url, conn, unique_ckan_name) -> None:
    table = "requests_window"
    make_requests_table(conn, table, every=30)
    spec = requests_spec(table, unique_ckan_name("cf-window"), files_refresh_hours=24)
    files = {"csv", "json", "geojson", "kml", "shapefile", "ods", "xlsx"}
    assert files <= {o.role for o in publish(spec, warehouse_url, ckan, organization, datastore_url).sent}
    with conn.cursor() as cur:
        cur.execute(f"""update fixture.{table} set "Status" = 'closed', "ModifiedDate" = now()
                        where "RequestId" = (select min("RequestId") from fixture.{table})""")
    conn.commit()
    expected = table_rows(conn, table)

    hourly = publish(spec, warehouse_url, ckan, organization, datastore_url)
    assert {o.role for o in hourly.sent} - {"metadata"} == {"datastore"}
    assert {o.role for o in hourly.outcomes if o.action == "deferred"} == files
    resources = managed_resources(ckan, spec.ckan_name)
    assert comparable(datastore_rows(ckan, resources["datastore"][0]["id"], "RequestId")) == comparable(expected)
    assert comparable(csv_rows(resources["csv"][0]["url"])) != comparable(expected)
    assert "Rebuilt at most every 24 hours" in resources["csv"][0]["description"]

    # A day later the next publication rebuilds them all, though nothing changed since.
    ckan.action.resource_patch(id=resources["kml"][0]["id"], civicflow_files_at="2000-01-01T00:00:00+00:00")
    daily = publish(spec, warehouse_url, ckan, organization, datastore_url)
    assert {o.role for o in daily.sent} - {"metadata"} == files
    assert comparable(csv_rows(managed_resources(ckan, spec.ckan_name)["csv"][0]["url"])) == comparable(expected)


def test_full_compare_catches_a_change_that_kept_its_modified_date(published, warehouse_url, ckan, organization,
                                                                   datastore_url, conn) -> None:
    spec, _ = published
    with conn.cursor() as cur:
        cur.execute(f'''update fixture.{TABLE} set "Description" = "Description" || ' (edited)'
                        where "RequestId" = (select min("RequestId") from fixture.{TABLE})''')
    conn.commit()
    quick = publish(spec, warehouse_url, ckan, organization, datastore_url)
    assert outcome(quick, "datastore").action == "unchanged"  # U2 says nothing changed: not looked at
    thorough = publish(spec, warehouse_url, ckan, organization, datastore_url, full_compare=True)
    assert outcome(thorough, "datastore").rows_updated == 1


def test_dataset_page_renders_its_resources(published, ckan: RemoteCKAN) -> None:
    spec, _ = published
    page = requests.get(f"{ckan.address}/dataset/{spec.ckan_name}", timeout=60)
    assert page.status_code == 200
    for found in managed_resources(ckan, spec.ckan_name).values():
        resource = found[0]
        assert resource["name"] in page.text
        resource_page = requests.get(f"{ckan.address}/dataset/{spec.ckan_name}/resource/{resource['id']}", timeout=60)
        assert resource_page.status_code == 200, resource["name"]


def test_audit_has_a_row_per_resource_and_publication(published, conn) -> None:
    spec, publication = published
    with conn.cursor() as cur:
        cur.execute("select resource, action, rows_inserted, content_hash, check_summary from publish.audit "
                    "where ckan_dataset = %s order by id", (spec.ckan_name,))
        rows = cur.fetchall()
    conn.commit()
    first = rows[: len(publication.outcomes)]
    assert [r[0] for r in first] == [o.role for o in publication.outcomes]
    datastore = next(r for r in first if r[0] == "datastore")
    assert datastore[1] == "created" and datastore[2] == publication.delta.total and datastore[3]
    assert json.loads(json.dumps(datastore[4]))["summary"].startswith("no check results")


def test_a_repeated_key_stops_the_publication_before_any_row_goes_out(
        warehouse_url, ckan, organization, datastore_url, conn, unique_ckan_name) -> None:
    table = "requests_repeated_key"
    make_requests_table(conn, table, every=50)
    with conn.cursor() as cur:
        cur.execute(f'alter table fixture.{table} drop constraint {table}_pkey')
        cur.execute(f'insert into fixture.{table} select * from fixture.{table} order by "RequestId" limit 1')
    conn.commit()
    spec = requests_spec(table, unique_ckan_name("cf-repeated"))
    with pytest.raises(ValueError, match=r"RequestId of fixture\.requests_repeated_key is not unique"):
        publish(spec, warehouse_url, ckan, organization, datastore_url)
    assert sync.load_state(conn, table) is None
    datastore = managed_resources(ckan, spec.ckan_name)["datastore"][0]
    assert ckan.action.datastore_search(resource_id=datastore["id"], limit=0)["total"] == 0
