"""The published table as the publication sees it: its columns, their DataStore types, and the SQL that renders a
row for each kind of output (text for CSV and COPY, JSON-typed for JSON and the DataStore API)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.publish.catalog import DatasetSpec

ROW_KEY = "RowKey"  # the one-column key of a dataset keyed by several fields
TIMEZONE = "America/New_York"  # F5: local time, ISO 8601 with its offset

# PostgreSQL type (udt_name) -> DataStore field type. Anything else goes out as text.
DATASTORE_TYPES = {
    "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "uuid": "text",
    "int2": "int4", "int4": "int4", "int8": "int8",
    "numeric": "numeric", "float4": "float8", "float8": "float8",
    "bool": "bool", "date": "date", "timestamptz": "timestamptz", "timestamp": "timestamp", "time": "time",
    "geometry": "text",  # WKT: the DataStore database has no PostGIS
}


class TableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    description: str = ""

    @property
    def is_geometry(self) -> bool:
        return self.pg_type == "geometry"

    @property
    def datastore_type(self) -> str:
        return DATASTORE_TYPES.get(self.pg_type, "text")

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.name)

    def as_text(self, alias: str = "t") -> sql.Composable:
        """The value as CSV and COPY carry it: ISO 8601 timestamps with offsets (F5), WKT geometry."""
        ref = sql.SQL("{}.{}").format(sql.Identifier(alias), self.ident)
        if self.pg_type in ("timestamptz", "timestamp"):
            return sql.SQL("(to_json({}) #>> '{{}}')").format(ref)
        if self.is_geometry:
            return sql.SQL("st_astext({})").format(ref)
        if self.pg_type == "bool":  # COPY would print t and f
            return sql.SQL("{}::text").format(ref)
        if self.pg_type in DATASTORE_TYPES:
            return ref
        return sql.SQL("{}::text").format(ref)

    def as_json(self, alias: str = "t") -> sql.Composable:
        """The value as JSON carries it: numbers stay numbers, geometry is WKT."""
        ref = sql.SQL("{}.{}").format(sql.Identifier(alias), self.ident)
        if self.is_geometry or self.pg_type not in DATASTORE_TYPES:
            return self.as_text(alias)
        return ref


@dataclass(frozen=True)
class PublishedTable:
    spec: DatasetSpec
    columns: tuple[Column, ...]  # the published fields, RowKey first when there is one
    geometry: Column | None

    @property
    def relation(self) -> sql.Composable:
        return sql.Identifier(self.spec.schema_name, self.spec.table_name)

    @property
    def key_column(self) -> str:
        return ROW_KEY if len(self.spec.key) > 1 else self.spec.key[0]

    @property
    def has_row_key(self) -> bool:
        return len(self.spec.key) > 1

    def key_sql(self, alias: str = "t") -> sql.Composable:
        """The key as text; several key fields joined with | (a null field is empty)."""
        parts = [sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(k)) for k in self.spec.key]
        if len(parts) == 1:
            return parts[0]
        return sql.SQL("array_to_string(array[{}], '|', '')").format(sql.SQL(", ").join(parts))

    def _select(self, render, alias: str) -> sql.Composable:
        items = []
        for column in self.columns:
            value = self.key_sql(alias) if column.name == ROW_KEY and self.has_row_key else render(column, alias)
            items.append(sql.SQL("{} as {}").format(value, column.ident))
        return sql.SQL(", ").join(items)

    def text_select(self, alias: str = "t") -> sql.Composable:
        return self._select(Column.as_text, alias)

    def json_select(self, alias: str = "t") -> sql.Composable:
        return self._select(Column.as_json, alias)

    def row_hash_sql(self, alias: str = "t") -> sql.Composable:
        # The whole source row as PostgreSQL prints it: any changed field changes the hash.
        return sql.SQL("md5({}::text)::uuid").format(sql.Identifier(alias))

    @property
    def signature(self) -> str:
        """Changes when a field is added, dropped, renamed or retyped: then everything is published again."""
        text = "|".join(f"{c.name}:{c.pg_type}" for c in self.columns) + f"|key={self.key_column}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def datastore_fields(self) -> list[dict]:
        fields = []
        for column in self.columns:
            info = {"label": column.name}
            if column.description:
                info["notes"] = column.description
            fields.append({"id": column.name, "type": column.datastore_type, "info": info})
        return fields


def describe_table(conn: psycopg2.extensions.connection, spec: DatasetSpec,
                   descriptions: dict[str, str] | None = None) -> PublishedTable:
    """Read the table's columns from the catalog; fail clearly when the table or a key field is missing."""
    with conn.cursor() as cur:
        cur.execute(
            """
            select a.attname, t.typname
            from pg_attribute a join pg_type t on t.oid = a.atttypid
            where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
            order by a.attnum
            """,
            (sql.Identifier(spec.schema_name, spec.table_name).as_string(cur),),
        )
        rows = cur.fetchall()
    if not rows:
        raise TableError(f"{spec.name}: the published table {spec.table} does not exist (or has no columns)")
    descriptions = descriptions or {}
    columns = [Column(name, pg_type, descriptions.get(name, "")) for name, pg_type in rows]
    names = {c.name for c in columns}
    missing = [k for k in spec.key if k not in names]
    if missing:
        raise TableError(f"{spec.name}: key field(s) {missing} are not columns of {spec.table}")
    if spec.modified_field and spec.modified_field not in names:
        raise TableError(f"{spec.name}: modified field {spec.modified_field} is not a column of {spec.table}")
    if len(spec.key) > 1:
        if ROW_KEY in names:
            raise TableError(f"{spec.name}: {spec.table} already has a {ROW_KEY} column; key it by that instead")
        key_doc = "Publication key: " + " | ".join(spec.key) + " (a null field is empty)."
        columns.insert(0, Column(ROW_KEY, "text", key_doc))
    geometries = [c for c in columns if c.is_geometry]
    geometry = next((c for c in geometries if c.name == spec.geometry_field), geometries[0] if geometries else None)
    return PublishedTable(spec, tuple(columns), geometry)
