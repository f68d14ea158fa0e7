"""SQL that turns a cleaned text value into its typed value.

Two forms per type. The fast form is PostgreSQL's native cast: one bad value makes the whole
statement fail. The landing then re-runs the file with the safe form, whose PL/pgSQL helpers trap
the error per value and answer null, so that the row is quarantined with its reason instead.
Guarding every cast with a regular expression costs about as much as the safe form on clean data,
and clean data is the common case, so the fast form has no guard.
"""

from __future__ import annotations

from psycopg2 import sql

from civicflow_assets.sources.mapping import FieldSpec, Mapping

# strftime directive -> PostgreSQL to_timestamp template
_DIRECTIVES = {
    "%m": "MM", "%d": "DD", "%Y": "YYYY", "%y": "YY", "%H": "HH24", "%I": "HH12",
    "%M": "MI", "%S": "SS", "%f": "US", "%p": "AM", "%b": "Mon",
}
TRUE_VALUES = ("true", "t", "yes", "y", "1")
FALSE_VALUES = ("false", "f", "no", "n", "0")

PG_TYPES = {
    "text": "text",
    "integer": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "geometry": "geometry(Geometry, 4326)",
    "point": "geometry(Geometry, 4326)",  # so a WKT point and a lon/lat pair can fill the same column
}
# The same types as PostgreSQL's format_type() spells them, to compare with an existing table.
CATALOG_TYPES = {
    "text": "text",
    "integer": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp with time zone",
    "geometry": "geometry(Geometry,4326)",
    "point": "geometry(Geometry,4326)",
}

# Types whose fast form answers null for a value it cannot read instead of failing the statement,
# so that a typed null after a given value must be checked even when the fast form succeeded.
NULL_ON_BAD_VALUE = frozenset({"point"})

# Each traps the cast error of one value and answers null. Not parallel safe: they open subtransactions.
SAFE_FUNCTIONS = """
create schema if not exists civicflow;
create or replace function civicflow.try_timestamp(v text, fmt text) returns timestamptz
language plpgsql stable as $$
begin return to_timestamp(v, fmt); exception when others then return null; end $$;
create or replace function civicflow.try_timestamptz(v text) returns timestamptz
language plpgsql stable as $$
begin return v::timestamptz; exception when others then return null; end $$;
create or replace function civicflow.try_date(v text, fmt text) returns date
language plpgsql stable as $$
begin return to_date(v, fmt); exception when others then return null; end $$;
create or replace function civicflow.try_numeric(v text) returns numeric
language plpgsql immutable as $$
begin return v::numeric; exception when others then return null; end $$;
create or replace function civicflow.try_bigint(v text) returns bigint
language plpgsql immutable as $$
begin return v::bigint; exception when others then return null; end $$;
create or replace function civicflow.try_float(v text) returns float8
language plpgsql immutable as $$
begin return v::float8; exception when others then return null; end $$;
create or replace function civicflow.try_geometry(v text) returns geometry
language plpgsql immutable as $$
begin return st_geomfromtext(v, 4326); exception when others then return null; end $$;
-- The fast form's answer to a value that is not yes/no: fail the statement, as a failed cast does.
create or replace function civicflow.not_boolean(v text) returns boolean
language plpgsql immutable strict parallel safe as $$
begin raise exception using errcode = 'invalid_text_representation', message = format('%L is not yes/no', v); end $$;
"""


def strftime_to_pg(fmt: str) -> str:
    """'%m/%d/%Y %I:%M:%S %p' -> 'MM/DD/YYYY HH12:MI:SS AM'."""
    template, i = [], 0
    while i < len(fmt):
        token = fmt[i : i + 2]
        if token in _DIRECTIVES:
            template.append(_DIRECTIVES[token])
            i += 2
        elif fmt[i] == "%":
            raise ValueError(f"date format {fmt!r}: directive {token!r} is not supported")
        else:
            template.append(f'"{fmt[i]}"' if fmt[i].isalpha() else fmt[i])
            i += 1
    return "".join(template)


def _call(fn: str, *args: sql.Composable) -> sql.Composable:
    return sql.SQL("{}({})").format(sql.SQL(fn), sql.SQL(", ").join(args))


def _cast(v: sql.Composable, pg_type: str) -> sql.Composable:
    return sql.SQL("{}::{}").format(v, sql.SQL(pg_type))


def problem(spec: FieldSpec, mapping: Mapping) -> str:
    """Why a non-empty value did not type, for the quarantine reason."""
    if spec.type == "point":
        return f"{spec.lon}/{spec.lat} is not a longitude/latitude pair"
    if spec.type in ("timestamp", "date"):
        fmt = spec.format or mapping.date_format
        return "is not an ISO 8601 timestamp" if fmt == "iso8601" else f"is not a date in format {fmt}"
    return {
        "integer": "is not an integer",
        "numeric": "is not a number",
        "boolean": "is not a yes/no value",
        "geometry": "is not WKT geometry",
    }.get(spec.type, "")


def typed_value(spec: FieldSpec, mapping: Mapping, columns: dict[str, sql.Composable],
                safe: bool) -> sql.Composable:
    """columns: source column -> SQL of its cleaned text (trimmed; empty and null markers are null)."""
    kind = spec.type
    if kind == "point":
        lon, lat = columns[spec.lon or ""], columns[spec.lat or ""]
        x, y = ((_call("civicflow.try_float", lon), _call("civicflow.try_float", lat)) if safe
                else (_cast(lon, "float8"), _cast(lat, "float8")))
        return sql.SQL(
            "case when abs({x}) <= 180 and abs({y}) <= 90 then st_setsrid(st_makepoint({x}, {y}), 4326) end"
        ).format(x=x, y=y)
    v = columns[spec.column or spec.name]
    if kind == "text":
        return v
    if kind == "boolean":
        # The fast form fails on any other value (the safe form then answers null), so that no check has to
        # read the value a second time: 0.6 s of CPU per million rows.
        whens = sql.SQL(" ").join(
            sql.SQL("when {} then {}").format(sql.Literal(text), sql.SQL(str(value).lower()))
            for values, value in ((TRUE_VALUES, True), (FALSE_VALUES, False)) for text in values)
        otherwise = sql.SQL("null") if safe else _call("civicflow.not_boolean", v)
        return sql.SQL("case lower({v}) {w} else {o} end").format(v=v, w=whens, o=otherwise)
    if kind == "integer":
        return _call("civicflow.try_bigint", v) if safe else _cast(v, "bigint")
    if kind == "numeric":
        return _call("civicflow.try_numeric", v) if safe else _cast(v, "numeric")
    if kind == "geometry":
        srid = sql.Literal(4326)
        return _call("civicflow.try_geometry", v) if safe else _call("st_geomfromtext", v, srid)
    if kind in ("timestamp", "date"):
        fmt = spec.format or mapping.date_format
        pg_type = "timestamptz" if kind == "timestamp" else "date"
        if fmt == "iso8601":
            return _cast(_call("civicflow.try_timestamptz", v), pg_type) if safe else _cast(v, pg_type)
        template = sql.Literal(strftime_to_pg(fmt))
        if kind == "timestamp":
            return _call("civicflow.try_timestamp" if safe else "to_timestamp", v, template)
        return _call("civicflow.try_date" if safe else "to_date", v, template)
    raise ValueError(f"unsupported field type {kind}")
