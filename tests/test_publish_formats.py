"""The file writers on awkward values, without CKAN: free text with characters XML cannot carry, COPY's own quote
and delimiter, markup and line breaks must come out as well-formed JSON, GeoJSON, KML and a readable shapefile."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree

import psycopg2.extensions
import pytest

from civicflow_assets.publish.catalog import DatasetSpec
from civicflow_assets.publish.formats import FORMATS
from civicflow_assets.publish.table import TIMEZONE, describe_table

AWKWARD = {
    "r1": "COPY's quote \x01 and delimiter \x02, a vertical tab \x0b and an escape \x1b",
    "r2": 'markup <b>&amp;</b> "quoted"\r\nsecond line\tafter a tab',
    "r3": None,
}
KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture(scope="module")
def awkward_table(warehouse_url: str) -> DatasetSpec:
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists fixture")
        cur.execute("drop table if exists fixture.awkward_text")
        cur.execute('create table fixture.awkward_text ("RequestId" text primary key, "Description" text, '
                    '"CreatedDate" timestamptz, "Location" geometry(Point, 4326))')
        for i, (key, text) in enumerate(AWKWARD.items()):
            cur.execute("insert into fixture.awkward_text values (%s, %s, '2024-03-10 01:30:00-05'::timestamptz + "
                        "%s * interval '1 hour', st_setsrid(st_makepoint(-85.3 + %s / 100.0, 35.0), 4326))",
                        (key, text, i, i))
    return DatasetSpec(name="awkward_text", table="fixture.awkward_text", ckan_name="awkward-text",
                       title="Awkward <text> & co", description="", owner="tests", update_frequency="daily",
                       key=("RequestId",), geometry_field="Location")


def written(conn: psycopg2.extensions.connection, spec: DatasetSpec, fmt: str) -> bytes:
    table = describe_table(conn, spec)
    out = io.BytesIO()
    with conn.cursor() as cur:
        cur.execute("set time zone %s", (TIMEZONE,))
        FORMATS[fmt].write(cur, table, out)
    return out.getvalue()


def xml_safe(text: str | None) -> str | None:
    return None if text is None else "".join(c for c in text if c >= " " or c in "\t\n\r")


def test_json_and_geojson_carry_every_character(conn, awkward_table) -> None:
    rows = json.loads(written(conn, awkward_table, "json"))
    assert {r["RequestId"]: r["Description"] for r in rows} == AWKWARD
    assert rows[1]["CreatedDate"] == "2024-03-10T03:30:00-04:00"  # F5: local time across the DST change
    features = json.loads(written(conn, awkward_table, "geojson"))["features"]
    assert [f["id"] for f in features] == ["r1", "r2", "r3"]
    assert {f["id"]: f["properties"]["Description"] for f in features} == AWKWARD
    assert features[2]["geometry"] == {"type": "Point", "coordinates": [-85.28, 35]}


def test_kml_is_well_formed_one_placemark_per_line(conn, awkward_table) -> None:
    kml = written(conn, awkward_table, "kml")
    lines = kml.decode().splitlines()
    assert sum(line.startswith("<Placemark>") for line in lines) == len(AWKWARD)
    placemarks = ElementTree.fromstring(kml).iter(f"{KML}Placemark")
    found = {}
    for placemark in placemarks:
        data = {d.get("name"): d.findtext(f"{KML}value") for d in placemark.iter(f"{KML}Data")}
        found[placemark.findtext(f"{KML}name")] = data["Description"] or None
    # Characters XML 1.0 cannot carry are dropped; line breaks go out as character references, which keep them.
    assert found == {k: xml_safe(v) for k, v in AWKWARD.items()}
    assert ElementTree.fromstring(kml).findtext(f"{KML}Document/{KML}name") == "Awkward <text> & co"


def test_shapefile_zip_reads_back(conn, awkward_table, tmp_path) -> None:
    import pyogrio

    archive = tmp_path / "awkward.zip"
    archive.write_bytes(written(conn, awkward_table, "shapefile"))
    with zipfile.ZipFile(archive) as opened:
        shp = next(n for n in opened.namelist() if n.endswith(".shp"))
    frame = pyogrio.read_dataframe(f"/vsizip/{archive}/{shp}")
    assert list(frame["RequestId"]) == ["r1", "r2", "r3"]
    assert [round(p.x, 2) for p in frame.geometry] == [-85.3, -85.29, -85.28]
