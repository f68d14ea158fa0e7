"""The file resources of a dataset (rules F1-F6, U4): CSV, JSON, GeoJSON, KML, a zipped shapefile, ODS and XLSX.

Every writer reads the published table in key order, so the same rows give the same file. Timestamps go out as
ISO 8601 with their offset in America/New_York (F5), geometry as WKT in tabular formats; nothing is formatted
for display (F4). CSV, JSON, GeoJSON and KML stream out of PostgreSQL with COPY, the shapefile goes from one COPY
through Arrow to GDAL, and the spreadsheets read rows in batches.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape, quoteattr

import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.publish.table import Column, PublishedTable

FORMAT_VERSION = 3  # bump when a writer's output changes: every file is then published again
BATCH_ROWS = 5_000
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same rows give the same bytes
# XML 1.0 cannot carry these, and a free-text field sometimes does.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The same control characters as bytes: in UTF-8 they never occur inside a multi-byte character.
XML_ILLEGAL_BYTES = bytes([*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
# COPY in CSV mode with a quote and a delimiter no line can contain: each line comes out verbatim.
COPY_LINES = "(format csv, quote e'\\x01', delimiter e'\\x02')"

Writer = Callable[[psycopg2.extensions.cursor, PublishedTable, BinaryIO], None]


@dataclass(frozen=True)
class FileFormat:
    id: str
    extension: str
    ckan_format: str
    mimetype: str
    label: str
    write: Writer
    spatial: bool = False
    spreadsheet: bool = False
    # Seconds to write and upload 1,000,000 published requests beside a DataStore load (the spreadsheets, written
    # cell by cell, are the slowest per row): the costliest start first, so that none is left running alone.
    cost: int = 0

    def filename(self, base: str) -> str:
        return f"{base}.{self.extension}"


def _ordered(table: PublishedTable, select: sql.Composable) -> sql.Composable:
    return sql.SQL("select {s} from {t} t order by {k}").format(s=select, t=table.relation, k=table.key_sql("t"))


class _JoinedRows:
    """COPY's output file: libpq hands over one data row per call, so each row is written here without its newline,
    `separator` between rows, and `deleted` bytes removed."""

    def __init__(self, out: BinaryIO, separator: bytes, deleted: bytes = b""):
        self.out, self.separator, self.deleted = out, separator, deleted
        self.rows = 0

    def write(self, row: bytes) -> int:
        if self.rows:
            self.out.write(self.separator)
        self.rows += 1
        return self.out.write(row[:-1].translate(None, self.deleted) if self.deleted else row[:-1])


def _copy_rows(cur: psycopg2.extensions.cursor, query: sql.Composable, out: BinaryIO, separator: bytes,
               deleted: bytes = b"") -> None:
    """One value per output row, streamed straight into `out`."""
    joined = _JoinedRows(out, separator, deleted)
    cur.copy_expert(sql.SQL("copy ({}) to stdout with {}").format(query, sql.SQL(COPY_LINES)).as_string(cur), joined)


def write_csv(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    query = sql.SQL("copy ({}) to stdout with (format csv, header true, encoding 'UTF8')").format(
        _ordered(table, table.text_select("t")))
    cur.copy_expert(query.as_string(cur), out)


def write_json(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    query = sql.SQL("select row_to_json(x) from ({}) x").format(_ordered(table, table.json_select("t")))
    out.write(b"[\n")
    _copy_rows(cur, query, out, b",\n")
    out.write(b"\n]\n")


def _geometry_4326(column: Column) -> sql.Composable:
    ref = sql.SQL("t.{}").format(column.ident)
    return sql.SQL("case when st_srid({g}) in (0, 4326) then {g} else st_transform({g}, 4326) end").format(g=ref)


def _properties(table: PublishedTable) -> list[Column]:
    return [c for c in table.columns if c is not table.geometry]


def write_geojson(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    assert table.geometry is not None
    props = [sql.SQL("{} as {}").format(
        table.key_sql("t") if c.name == table.key_column and table.has_row_key else c.as_json("t"), c.ident)
        for c in _properties(table)]
    query = sql.SQL(
        "select json_build_object('type', 'Feature', 'id', {k}, 'geometry', st_asgeojson({g}, 7)::json, "
        "'properties', to_json(p)) from {t} t cross join lateral (select {props}) p order by {k}").format(
        k=table.key_sql("t"), g=_geometry_4326(table.geometry), t=table.relation,
        props=sql.SQL(", ").join(props))
    out.write(b'{"type": "FeatureCollection", "features": [\n')
    _copy_rows(cur, query, out, b",\n")
    out.write(b"\n]}\n")


def _xml_escaped(text: sql.Composable) -> sql.Composable:
    return sql.SQL("replace(replace(replace({}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')").format(text)


def write_kml(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    assert table.geometry is not None

    def value(c: Column) -> sql.Composable:
        if c.name == table.key_column and table.has_row_key:
            return _xml_escaped(table.key_sql("t"))
        text = sql.SQL("{}::text").format(c.as_text("t"))
        # Numbers, booleans, timestamps and WKT hold no markup characters.
        return _xml_escaped(text) if c.datastore_type == "text" and not c.is_geometry else text

    data = [sql.SQL("{}, {}, '</value></Data>'").format(
        sql.Literal(f"<Data name={quoteattr(c.name)}><value>"), value(c)) for c in _properties(table)]
    # Built by concatenation: xmlelement per value is six times slower.
    placemark = sql.SQL(
        "concat('<Placemark><name>', {k}, '</name><ExtendedData>', {data}, '</ExtendedData>', "
        "st_askml({g}, 7), '</Placemark>')").format(
        k=_xml_escaped(table.key_sql("t")), data=sql.SQL(", ").join(data), g=_geometry_4326(table.geometry))
    # Newlines inside values become character references, so that each placemark is one line. Characters XML
    # cannot carry can only come from values; they are deleted from each line on its way out (a regular expression
    # over every line in SQL took 40% of the time). COPY's quote and delimiter are among them, so a line COPY had to
    # quote comes out as the placemark itself.
    query = sql.SQL("select replace(replace({p}, e'\\r', '&#13;'), e'\\n', '&#10;') from {t} t order by {k}").format(
        p=placemark, t=table.relation, k=table.key_sql("t"))
    title = escape(table.spec.title)
    out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n'
              f"<Document><name>{title}</name>\n".encode())
    _copy_rows(cur, query, out, b"\n", deleted=XML_ILLEGAL_BYTES)
    out.write(b"\n</Document>\n</kml>\n")


# -- spreadsheets: rows read in batches


def _rows(cur: psycopg2.extensions.cursor, table: PublishedTable) -> Iterator[tuple[Any, ...]]:
    select = table.json_select("t")
    named = cur.connection.cursor(name="publish_rows")
    try:
        named.itersize = BATCH_ROWS
        named.execute(_ordered(table, select))
        while batch := named.fetchmany(BATCH_ROWS):
            yield from batch
    finally:
        named.close()


def _cell(value: Any) -> Any:
    """A spreadsheet cell: numbers, booleans and dates keep their type; a timestamp stays ISO text (F5)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        return XML_ILLEGAL.sub("", value)
    return value


def write_xlsx(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    book.properties.creator = "CivicFlow"
    book.properties.created = book.properties.modified = dt.datetime(2000, 1, 1)
    sheet = book.create_sheet(table.spec.table_name[:31])
    sheet.append([c.name for c in table.columns])
    for row in _rows(cur, table):
        sheet.append([_cell(v) for v in row])
    book.save(out)


def _ods_cell(value: Any) -> str:
    value = _cell(value)
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, bool):
        text = "true" if value else "false"
        return f'<table:table-cell office:value-type="boolean" office:boolean-value="{text}"><text:p>{text}</text:p>' \
               "</table:table-cell>"
    if isinstance(value, int | float):
        return f'<table:table-cell office:value-type="float" office:value="{value!r}"><text:p>{value!r}</text:p>' \
               "</table:table-cell>"
    if isinstance(value, dt.date):
        return f'<table:table-cell office:value-type="date" office:date-value="{value.isoformat()}">' \
               f"<text:p>{value.isoformat()}</text:p></table:table-cell>"
    return f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}</text:p></table:table-cell>'


FORMATS_MIMETYPE_ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODS_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2"
  manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"""
ODS_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">
<office:body><office:spreadsheet><table:table table:name={name}>
"""
ODS_TAIL = "</table:table></office:spreadsheet></office:body></office:document-content>\n"


def _zip_entry(archive: zipfile.ZipFile, name: str, compress: bool = True, level: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info._compresslevel = level  # public as compress_level from Python 3.13
    return info


def write_ods(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    """OpenDocument spreadsheet written as a stream: odfpy builds the whole document in memory, far too slowly."""
    with zipfile.ZipFile(out, "w") as archive:
        # The mimetype entry comes first and uncompressed, so that tools can sniff the type (ODF 1.2, 3.3).
        archive.writestr(_zip_entry(archive, "mimetype", compress=False), FORMATS_MIMETYPE_ODS)
        archive.writestr(_zip_entry(archive, "META-INF/manifest.xml"), ODS_MANIFEST)
        with archive.open(_zip_entry(archive, "content.xml"), "w", force_zip64=True) as raw:
            content = io.TextIOWrapper(raw, encoding="utf-8")
            content.write(ODS_HEAD.format(name=quoteattr(table.spec.table_name)))
            header = "".join(_ods_cell(c.name) for c in table.columns)
            content.write(f"<table:table-row>{header}</table:table-row>\n")
            for row in _rows(cur, table):
                content.write("<table:table-row>" + "".join(_ods_cell(v) for v in row) + "</table:table-row>\n")
            content.write(ODS_TAIL)
            content.flush()
            content.detach()


# -- the zipped shapefile


def shapefile_names(columns: list[Column]) -> dict[str, str]:
    """Published field -> a unique shapefile field name of at most 10 characters (dBASE's limit)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        name = column.name[:10]
        n = 1
        while name.upper() in taken:
            suffix = str(n)
            name = column.name[: 10 - len(suffix)] + suffix
            n += 1
        taken.add(name.upper())
        names[column.name] = name
    return names


# dBASE field kinds of PostgreSQL types; the rest goes out as text (timestamps keep their offset, F5).
SHAPEFILE_NUMBERS = {"int2": "int", "int4": "int", "int8": "int", "numeric": "float", "float4": "float",
                     "float8": "float", "date": "date"}
SHAPEFILE_KINDS = {"POINT": "Point", "MULTIPOINT": "MultiPoint", "LINESTRING": "LineString",
                   "MULTILINESTRING": "MultiLineString", "POLYGON": "Polygon", "MULTIPOLYGON": "MultiPolygon"}
DBASE_TEXT_BYTES = 254


def _shapefile_geometry(cur: psycopg2.extensions.cursor, table: PublishedTable) -> tuple[sql.Composable, str]:
    """The geometry as WKB in 4326 and the layer's one shape type (Polygon and MultiPolygon go out as Multi)."""
    assert table.geometry is not None
    geometry = _geometry_4326(table.geometry)
    cur.execute(sql.SQL("select distinct geometrytype({g}) from {t} t where {g} is not null").format(
        g=geometry, t=table.relation))
    kinds = {row[0] for row in cur.fetchall()}
    if len(kinds) > 1:
        bases = {kind.removeprefix("MULTI") for kind in kinds}
        if len(bases) > 1 or f"MULTI{bases.pop()}" not in SHAPEFILE_KINDS:
            raise ValueError(f"{table.spec.name}: a shapefile holds one kind of shape, not {sorted(kinds)}")
        geometry, kinds = sql.SQL("st_multi({})").format(geometry), {next(k for k in kinds if k.startswith("MULTI"))}
    kind = SHAPEFILE_KINDS.get(kinds.pop(), "Unknown") if kinds else "Unknown"
    return sql.SQL("encode(st_asbinary({}), 'hex')").format(geometry), kind


def _shapefile_template(path: Path, rows: Any, props: list[Column], names: dict[str, str], kind: str) -> None:
    """An empty shapefile with the fields dBASE wants (numbers, dates, and text only as wide in bytes as its longest
    value): GDAL would make every text field 254 bytes wide, and shrinking them afterwards (RESIZE) is slow."""
    import numpy as np
    import pyarrow.compute as pc
    from pyogrio import raw

    def field(column: Column) -> Any:
        number = SHAPEFILE_NUMBERS.get(column.pg_type)
        if number:
            return np.array([], dtype={"int": "int64", "float": "float64", "date": "datetime64[D]"}[number])
        width = pc.max(pc.binary_length(rows.column(names[column.name]))).as_py() or 1
        return np.array([], dtype=f"U{min(width, DBASE_TEXT_BYTES)}")

    raw.write(str(path), geometry=np.array([], dtype=object), field_data=[field(c) for c in props],
              fields=[names[c.name] for c in props], driver="ESRI Shapefile", geometry_type=kind, crs="EPSG:4326",
              encoding="UTF-8")


def _shapefile_rows(cur: psycopg2.extensions.cursor, table: PublishedTable, props: list[Column],
                    names: dict[str, str], values: list[sql.Composable], geometry: sql.Composable,
                    spool: BinaryIO) -> Any:
    """The rows as an Arrow table, from one COPY: going row by row through the driver is ten times slower."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    arrow_types = {"int": pa.int64(), "float": pa.float64(), "date": pa.date32()}
    types = {names[c.name]: arrow_types.get(SHAPEFILE_NUMBERS.get(c.pg_type, ""), pa.string()) for c in props}
    select = sql.SQL(", ").join([*values, geometry])
    cur.copy_expert(sql.SQL("copy ({}) to stdout with (format csv)").format(_ordered(table, select)).as_string(cur),
                    spool)
    spool.seek(0)
    columns = [*types, "geometry"]
    rows = pa_csv.read_csv(spool, read_options=pa_csv.ReadOptions(column_names=columns),
                           convert_options=pa_csv.ConvertOptions(column_types={**types, "geometry": pa.string()},
                                                                 strings_can_be_null=True))
    shapes = [None if value is None else bytes.fromhex(value) for value in rows.column("geometry").to_pylist()]
    return rows.set_column(len(types), "geometry", pa.array(shapes, type=pa.binary()))


def write_shapefile_zip(cur: psycopg2.extensions.cursor, table: PublishedTable, out: BinaryIO) -> None:
    import pyogrio

    assert table.geometry is not None
    props = _properties(table)
    names = shapefile_names(props)
    geometry, kind = _shapefile_geometry(cur, table)
    values = [sql.SQL("t.{}").format(c.ident) if c.pg_type in SHAPEFILE_NUMBERS else c.as_text("t") for c in props]
    base = table.spec.table_name[:60]
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as spool:
        path = Path(folder) / f"{base}.shp"
        rows = _shapefile_rows(cur, table, props, names, values, geometry, spool)
        _shapefile_template(path, rows, props, names, kind)
        if rows.num_rows:
            with warnings.catch_warnings():
                # dBASE cuts text at 254 bytes; the resource says so, and CSV and GeoJSON carry it whole.
                warnings.filterwarnings("ignore", message=".*truncated.*")
                pyogrio.write_arrow(rows, str(path), driver="ESRI Shapefile", geometry_name="geometry",
                                    geometry_type=kind, crs="EPSG:4326", encoding="UTF-8", append=True)
        field_map = io.StringIO()
        writer = csv.writer(field_map, lineterminator="\n")
        writer.writerow(["ShapefileField", "PublishedField"])
        writer.writerows([(names[c.name], c.name) for c in props])
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(folder).iterdir()):
                # Level 1: the dBASE file of a million requests compresses in 2 s instead of 7 s, to 64 MB, not 50.
                with part.open("rb") as source, archive.open(_zip_entry(archive, part.name, level=1), "w",
                                                             force_zip64=True) as entry:
                    shutil.copyfileobj(source, entry, 1 << 20)
            archive.writestr(_zip_entry(archive, f"{base}_fields.csv"), field_map.getvalue())


FORMATS: dict[str, FileFormat] = {f.id: f for f in (
    FileFormat("csv", "csv", "CSV", "text/csv", "CSV", write_csv, cost=17),
    FileFormat("json", "json", "JSON", "application/json", "JSON", write_json, cost=24),
    FileFormat("geojson", "geojson", "GeoJSON", "application/geo+json", "GeoJSON", write_geojson, spatial=True,
               cost=27),
    FileFormat("kml", "kml", "KML", "application/vnd.google-earth.kml+xml", "KML", write_kml, spatial=True, cost=54),
    FileFormat("shapefile", "zip", "SHP", "application/zip", "Shapefile (zipped)", write_shapefile_zip,
               spatial=True, cost=30),
    FileFormat("ods", "ods", "ODS", "application/vnd.oasis.opendocument.spreadsheet", "ODS spreadsheet", write_ods,
               spreadsheet=True, cost=100),
    FileFormat("xlsx", "xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "Excel spreadsheet", write_xlsx, spreadsheet=True, cost=100),
)}


def formats_for(table: PublishedTable, rows: int) -> list[FileFormat]:
    """CSV and JSON always; the map formats when the table has a geometry; spreadsheets when the catalog asks for
    them and a person could open the result (CSV is the open spreadsheet format beyond that, F3)."""
    spec = table.spec
    chosen = []
    for fmt in FORMATS.values():
        if fmt.spatial and table.geometry is None:
            continue
        if fmt.spreadsheet and (not spec.spreadsheets or rows > spec.spreadsheet_max_rows):
            continue
        chosen.append(fmt)
    return chosen
