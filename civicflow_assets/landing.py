"""Fast, lossless landing: COPY text in, type in SQL, quarantine what does not type, merge in one transaction.

Every input row ends up either in the raw table or in `raw._quarantine` with its reasons, so
read = loaded + quarantined for every file. A load changes the raw table in one transaction: a killed load
leaves the previous table as it was, and rows whose content did not change are not touched (idempotent). (A
large first load fills a new table on two sibling connections before it swaps it in: a killed load leaves that
table behind, and the next load of the raw table drops it.)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.extracts import Copy, Extract, extract_for
from civicflow_assets.sources.mapping import Mapping
from civicflow_assets.sql_typing import (
    CATALOG_TYPES,
    NULL_ON_BAD_VALUE,
    PG_TYPES,
    SAFE_FUNCTIONS,
    problem,
    typed_value,
)

RAW_SCHEMA = "raw"
LOG = logging.getLogger(__name__)

LANDING_DDL = f"""
create schema if not exists {RAW_SCHEMA};
create table if not exists {RAW_SCHEMA}._quarantine (
    _source text not null,
    _source_file text not null,
    _record bigint not null,
    _batch_id uuid not null,
    _loaded_at timestamptz not null default now(),
    reasons text[] not null,
    raw_row jsonb not null
);
create index if not exists _quarantine_source_idx on {RAW_SCHEMA}._quarantine (_source);
create table if not exists {RAW_SCHEMA}._loads (
    _batch_id uuid not null,
    _source text not null,
    _source_file text not null,
    target text not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp()
);
create table if not exists {RAW_SCHEMA}._cursors (
    source text primary key,
    cursor timestamptz not null,
    updated_at timestamptz not null default now()
);
"""


class LandingError(RuntimeError):
    pass


@dataclass
class FileStats:
    source_file: str
    read: int = 0
    quarantined: int = 0

    @property
    def loaded(self) -> int:
        return self.read - self.quarantined


@dataclass
class LoadResult:
    source: str
    target: str
    batch_id: str
    files: list[FileStats] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: float = 0.0
    safe_typing: bool = False
    step_seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.step_seconds[name] = self.step_seconds.get(name, 0.0) + time.monotonic() - started

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def loaded(self) -> int:
        return self.read - self.quarantined

    @property
    def unchanged(self) -> int:
        return self.loaded - self.inserted - self.updated

    def metadata(self) -> dict[str, Any]:
        return {
            "rows_read": self.read,
            "rows_loaded": self.loaded,
            "rows_quarantined": self.quarantined,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_deleted": self.deleted,
            "rows_unchanged": self.unchanged,
            "files": len(self.files),
            "batch_id": self.batch_id,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class _Progress:
    """Rows done / total, after each step of a load, on the logger the caller passes in: an asset passes
    `context.log`, so the lines show in the run log and on the console of `civicflow run`."""

    log: logging.Logger
    label: str
    files: int
    total: int = 0

    def copied(self, order: int, name: str, rows: int) -> None:
        self.total += rows
        self.log.info(f"{self.label}: copied {rows:,} rows from {Path(name).name} "
                      f"(file {order + 1}/{self.files}, {self.total:,} rows so far)")

    def rows(self, step: str, done: int, detail: str = "") -> None:
        share = f" ({done / self.total:.0%})" if self.total else ""
        self.log.info(f"{self.label}: {step} {done:,}/{self.total:,} rows{share}{detail}")


def ensure_landing_schema(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('civicflow.landing_ddl'))")
        cur.execute(LANDING_DDL)
        cur.execute(SAFE_FUNCTIONS)
    conn.commit()


def _target(mapping: Mapping) -> sql.Identifier:
    return sql.Identifier(RAW_SCHEMA, mapping.target)


def _columns_of(cur, table: sql.Identifier) -> list[tuple[str, str, bool]]:
    """Name, declared type and NOT NULL of each column, in order."""
    cur.execute("select attname, format_type(atttypid, atttypmod), attnotnull from pg_attribute"
                " where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                (table.as_string(cur),))
    return cur.fetchall()


def _ensure_target(cur, mapping: Mapping) -> None:
    """Create the raw table, or add the fields a new mapping brings; never change an existing type.

    The key leads with `_row_key`: a table holds one or few sources, and sorting a million keys that all
    begin with the same `_source` takes twice as long when the index is built."""
    table = _target(mapping)
    cur.execute(
        sql.SQL(
            "create table if not exists {t} ("
            " _source text not null, _row_key text not null, _source_file text not null,"
            " _record bigint not null, _loaded_at timestamptz not null, _batch_id uuid not null,"
            " _row_hash text not null, _nulled jsonb, primary key (_row_key, _source))"
        ).format(t=table)
    )
    existing = {name: kind for name, kind, _ in _columns_of(cur, table)}
    for spec in mapping.fields:
        wanted = PG_TYPES[spec.type]
        have = existing.get(spec.name)
        if have is None:
            cur.execute(sql.SQL("alter table {t} add column {c} {ty}").format(
                t=table, c=sql.Identifier(spec.name), ty=sql.SQL(wanted)))
            if spec.type in ("geometry", "point"):
                cur.execute(sql.SQL("create index on {t} using gist ({c})").format(
                    t=table, c=sql.Identifier(spec.name)))
        elif have != CATALOG_TYPES[spec.type]:
            raise LandingError(
                f"{mapping.origin or mapping.name}: field {spec.name} is {wanted} but "
                f"{RAW_SCHEMA}.{mapping.target}.{spec.name} is already {have}; rename the field or change its type"
            )


def _cleaned(column: sql.Composable, mapping: Mapping, trim: bool) -> sql.Composable:
    """Empty and null markers become null, compared after trimming when `trim` (see `_trimmed`)."""
    value = sql.SQL("btrim({c})").format(c=column) if trim else column
    cleaned = sql.SQL("nullif({v}, '')").format(v=value)
    if not mapping.null_values:
        return cleaned
    markers = sql.SQL(", ").join(sql.Literal(m) for m in mapping.null_values)
    return sql.SQL("case when {v} in ({m}) then null else {c} end").format(v=value, m=markers, c=cleaned)


def _trimmed(mapping: Mapping, column: str, safe: bool) -> bool:
    """Whether a source column is trimmed before it is cast. Free text and WKT are kept as they came: the
    raw layer keeps what the source said. The fast form trims only what a null marker or a yes/no value is
    compared with: its native casts read a value with blanks around it as they read it without, and fail on
    a blank-only one, which sends the file to the safe form, which trims. Trimming costs a copy of every
    value, and unfenced, the planner repeats it for each check that reads the value."""
    types = {f.type for f in mapping.fields if column in f.source_columns}
    if types <= {"text", "geometry"}:
        return False
    return safe or bool(mapping.null_values) or bool(types & (NULL_ON_BAD_VALUE | {"boolean"}))


def _typed_select(mapping: Mapping, header: list[str], name: str, safe: bool, land: sql.Composable) -> sql.Composable:
    """One row per landed row: _record, _row_key, _row_hash, _errors, _nulled and every typed field.

    Three layers: cleaned text (v*), typed values (t*), then the reasons a row cannot load (a value
    that did not type, a required value missing). The reasons array is only built for rows that have
    one. The safe form fences each layer (offset 0) so that its costly per-value helpers run once per
    value. The fast form needs no fence: its casts either type a value or fail the statement, so only
    the cheap casts that can answer null are checked again; unfenced, the planner flattens the layers
    and can type a large file with parallel workers, as PostgreSQL does for a CREATE TABLE AS."""
    position = {column: i for i, column in enumerate(header)}
    missing = [c for c in mapping.source_columns if c not in position]
    if missing:
        raise LandingError(
            f"{name}: columns {missing} named by mapping {mapping.name!r} are not in the header {header}")
    raw = {c: sql.Identifier(f"c{position[c]}") for c in mapping.source_columns}
    cleaned = {c: sql.Identifier(f"v{i}") for i, c in enumerate(mapping.source_columns)}
    typed = {f.name: sql.Identifier(f"t{i}") for i, f in enumerate(mapping.fields)}
    layer1 = sql.SQL(", ").join(
        sql.SQL("{} as {}").format(_cleaned(raw[c], mapping, trim=_trimmed(mapping, c, safe)), cleaned[c])
        for c in mapping.source_columns)
    # A 64-bit hash of the record, nulls included: a third of the cost of md5 over its text, and plenty
    # to tell whether one key's row changed.
    row_hash = sql.SQL("hash_record_extended(row({}), 0)::text").format(
        sql.SQL(", ").join([*raw.values(), sql.Identifier("_shape_error")]))
    layer2 = sql.SQL(", ").join(
        sql.SQL("{} as {}").format(typed_value(f, mapping, cleaned, safe), typed[f.name]) for f in mapping.fields)
    problems: list[tuple[sql.Composable, str]] = []
    for spec in mapping.fields:
        label = f"{spec.name} ({', '.join(spec.source_columns)})"
        given = sql.SQL(" or ").join(sql.SQL("{} is not null").format(cleaned[c]) for c in spec.source_columns)
        if (why := problem(spec, mapping)) and (safe or spec.type in NULL_ON_BAD_VALUE):
            problems.append((sql.SQL("(({}) and {} is null)").format(given, typed[spec.name]),
                             f"{label}: value {why}"))
        if spec.required or spec.name in mapping.key:
            problems.append((sql.SQL("not ({})").format(given), f"{label}: required value missing"))
    any_problem = sql.SQL(" or ").join([sql.SQL("_shape_error is not null"), *(c for c, _ in problems)])
    reasons = sql.SQL(", ").join([sql.SQL("_shape_error"), *(
        sql.SQL("case when {} then {} end").format(c, sql.Literal(m)) for c, m in problems)])
    errors = sql.SQL("case when {} then array_remove(array[{}]::text[], null) else '{{}}'::text[] end").format(
        any_problem, reasons)
    row_key = (sql.SQL("concat_ws('|', {})").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(typed[k]) for k in mapping.key))
        if mapping.key else sql.SQL("null::text"))
    return sql.SQL(
        "select _record, {row_key} as _row_key, _row_hash, {errors} as _errors, _nulled, {fields}"
        " from (select s1.*, {layer2} from"
        " (select _record, _shape_error, {row_hash} as _row_hash, {nulled} as _nulled, {layer1}"
        " from {land}{fence}) s1{fence}) s2"
    ).format(
        fence=sql.SQL(" offset 0" if safe else ""), row_key=row_key, errors=errors, layer2=layer2,
        row_hash=row_hash, nulled=_nulled_reasons(mapping, raw),
        layer1=layer1, land=land,
        fields=sql.SQL(", ").join(sql.SQL("{} as {}").format(typed[f.name], sql.Identifier(f.name))
                                  for f in mapping.fields))


def _nulled_reasons(mapping: Mapping, raw: dict[str, sql.Identifier]) -> sql.Composable:
    """Which fields held a null marker (#Missing, an ACS sentinel), and what the marker means."""
    if not mapping.null_values:
        return sql.SQL("null::jsonb")
    whens = sql.SQL(" ").join(
        sql.SQL("when {m} then {r}").format(m=sql.Literal(m), r=sql.Literal(f"{m!r}: {r}"))
        for m, r in mapping.null_values.items())
    reasons = sql.SQL(", ").join(
        sql.SQL("{name}, case btrim({raw}) {whens} end").format(
            name=sql.Literal(spec.name), raw=raw[spec.source_columns[0]], whens=whens)
        for spec in mapping.fields if spec.type != "point")
    return sql.SQL("nullif(jsonb_strip_nulls(jsonb_build_object({})), '{{}}')").format(reasons)


def _append_typed(cur, mapping: Mapping, file_order: int, rows: sql.Identifier) -> None:
    fields = sql.SQL(", ").join(sql.Identifier(f.name) for f in mapping.fields)
    cur.execute(sql.SQL(
        "insert into _typed (_file_order, _record, _row_key, _row_hash, _errors, _nulled, {fields})"
        " select {order}, _record, _row_key, _row_hash, _errors, _nulled, {fields} from {rows}"
    ).format(fields=fields, order=sql.Literal(file_order), rows=rows))


def _land_table(cur, batch_id: str, index: int | str, width: int) -> sql.Identifier:
    """A file's rows as text. A regular table, not a temp one: parallel workers cannot read a temp table,
    and typing is the costliest step of a load. Unlogged, so that it costs no WAL; created and dropped
    inside the load's transaction, so that no other session sees it and a killed load leaves none behind.
    `_record` numbers the rows 1, 2, ... in the order COPY reads them: one COPY in one session draws every number,
    so a cache of them is still gapless, and saves a sequence access per row (0.4 s per million rows)."""
    land = sql.Identifier(RAW_SCHEMA, f"_land_{uuid.UUID(batch_id).hex}_{index}")
    cur.execute(sql.SQL("create unlogged table {t} ({c})").format(t=land, c=land_columns(width)))
    return land


def land_columns(width: int) -> sql.Composable:
    """A land table's columns: the record number, the reason a row is malformed, and the file's columns as text."""
    return sql.SQL(", ").join([
        sql.SQL("_record bigint generated by default as identity (cache 10000), _shape_error text"),
        *(sql.SQL("{} text").format(sql.Identifier(f"c{i}")) for i in range(width))])


def typing_select(cur, mapping: Mapping, extract: Extract, land: sql.Composable) -> sql.Composable:
    """The SELECT a clean first load types a file's landed rows with (into the raw table's shape), on its own:
    bench/ingest.py's limit runs it after psql's \\copy, with none of the landing's work around it."""
    cur.execute("savepoint typing_select")
    _ensure_target(cur, mapping)
    columns = _columns_of(cur, _target(mapping))
    cur.execute("rollback to savepoint typing_select")
    return _typed_rows(mapping, [extract], [land], str(uuid.uuid4()), columns)


def _typed_temp_table(cur, mapping: Mapping, extract: Extract, order: int, land: sql.Identifier,
                      safe: bool = False) -> sql.Identifier:
    """One landed file typed into a temp table. CREATE TABLE AS, because PostgreSQL runs the fast form
    with parallel workers and an INSERT ... SELECT on one core; copying the typed rows on is cheap
    next to typing them."""
    typed = sql.Identifier(f"_typed_{order}")
    cur.execute(sql.SQL("create temp table {t} on commit drop as {select}").format(
        t=typed, select=_typed_select(mapping, extract.header, extract.name, safe, land)))
    return typed


def _type_extract(cur, mapping: Mapping, extract: Extract, order: int, land: sql.Identifier) -> bool:
    """Type one landed file into _typed; answers whether the slow, per-value safe form was needed.

    The first file's typed table becomes _typed itself (a mapping has one file, mostly): its rows are not
    copied again."""
    cur.execute("savepoint typing")
    try:
        typed, safe = _typed_temp_table(cur, mapping, extract, order, land), False
    except (psycopg2.DataError, psycopg2.InternalError):  # class 22, and PostGIS parse errors (XX000)
        cur.execute("rollback to savepoint typing")
        typed, safe = _typed_temp_table(cur, mapping, extract, order, land, safe=True), True
    if order == 0:
        cur.execute(sql.SQL("alter table {} rename to _typed").format(typed))
        cur.execute("alter table _typed add column _file_order int not null default 0")
    else:
        _append_typed(cur, mapping, order, typed)
        cur.execute(sql.SQL("drop table {}").format(typed))
    return safe


def _mark_duplicates(cur, mapping: Mapping) -> None:
    """Keys seen twice in one extract: the last record wins, the others are quarantined with the reason."""
    if mapping.key:
        cur.execute(
            "with ranked as (select ctid, _row_key, row_number() over"
            " (partition by _row_key order by _file_order desc, _record desc) as n"
            " from _typed where _row_key in (select _row_key from _typed where _row_key is not null"
            " and cardinality(_errors) = 0 group by 1 having count(*) > 1) and cardinality(_errors) = 0)"
            " update _typed t set _errors = array['duplicate key ' || r._row_key ||"
            " ': a later record of this extract supersedes it'] from ranked r where t.ctid = r.ctid and r.n > 1"
        )
    else:
        # Identical rows are legitimate in keyless extracts (two equal budget lines): number them.
        cur.execute(
            "with numbered as (select ctid, _row_hash || ':' || row_number() over"
            " (partition by _row_hash order by _file_order, _record) as k from _typed)"
            " update _typed t set _row_key = n.k from numbered n where t.ctid = n.ctid"
        )


def _row_as_jsonb(header: list[str]) -> sql.Composable:
    """The landed text row keyed by source column; built in pieces (a function takes 100 arguments)."""
    pairs = [sql.SQL("{}, l.{}").format(sql.Literal(c), sql.Identifier(f"c{i}")) for i, c in enumerate(header)]
    return sql.SQL(" || ").join(
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs[i : i + 50]))
        for i in range(0, len(pairs), 50))


def _quarantine(cur, mapping: Mapping, extracts: list[Extract], lands: list[sql.Identifier],
                batch_id: str) -> list[int]:
    if mapping.mode == "snapshot":
        cur.execute(f"delete from {RAW_SCHEMA}._quarantine where _source = %s", (mapping.name,))
    counts = []
    for order, (extract, land) in enumerate(zip(extracts, lands, strict=True)):
        cur.execute(sql.SQL(
            "insert into {q} (_source, _source_file, _record, _batch_id, reasons, raw_row)"
            " select {source}, {file}, t._record, {batch}, t._errors, {raw_row}"
            " from _typed t join {land} l on l._record = t._record"
            " where t._file_order = {order} and cardinality(t._errors) > 0").format(
                q=sql.Identifier(RAW_SCHEMA, "_quarantine"), source=sql.Literal(mapping.name),
                file=sql.Literal(extract.name),
                batch=sql.Literal(batch_id), raw_row=_row_as_jsonb(extract.header), land=land,
                order=sql.Literal(order)))
        counts.append(cur.rowcount)
    return counts


def _sort_memory(cur) -> None:
    """For this transaction's index builds: a server's default (64 MB) makes a million keys sort on disk; the
    embedded cluster already runs with 512 MB."""
    cur.execute("select set_config('maintenance_work_mem', greatest(pg_size_bytes(current_setting("
                "'maintenance_work_mem')), pg_size_bytes('512MB')) / 1024 || 'kB', true)")


@contextlib.contextmanager
def _indexes_rebuilt_after(cur, table: sql.Identifier) -> Iterator[None]:
    """Filling an empty table: building its indexes afterwards is about 3x faster than maintaining them."""
    cur.execute(sql.SQL(
        "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,"
        " pg_get_constraintdef(c.oid) from pg_index i left join pg_constraint c on c.conindid = i.indexrelid"
        " where i.indrelid = {t}::regclass").format(t=sql.Literal(table.as_string(cur))))
    indexes = cur.fetchall()
    for name, _, constraint, _ in indexes:
        if constraint:
            cur.execute(sql.SQL("alter table {t} drop constraint {c}").format(t=table, c=sql.Identifier(constraint)))
        else:
            cur.execute(sql.SQL("drop index {}").format(sql.SQL(name)))
    yield
    _sort_memory(cur)
    for _, definition, constraint, constraint_def in indexes:
        if constraint:
            cur.execute(sql.SQL("alter table {t} add constraint {c} {d}").format(
                t=table, c=sql.Identifier(constraint), d=sql.SQL(constraint_def)))
        else:
            cur.execute(definition)


GOOD = sql.SQL("(select * from _typed where cardinality(_errors) = 0)")


def _merge(cur, mapping: Mapping, batch_id: str, files: list[str], result: LoadResult) -> None:
    """One pass over the extract and the stored rows finds the keys that changed (new, another row hash, gone);
    the delete and the insert then touch only those, by key."""
    table = _target(mapping)
    cur.execute(sql.SQL(
        "create temp table _changes on commit drop as"
        " select coalesce(g._row_key, t._row_key) as _row_key,"
        " case when t._row_key is null then 'new' when g._row_key is null then 'gone' else 'changed' end as change"
        " from {good} g full join (select _row_key, _row_hash from {t} where _source = %s) t"
        " on t._row_key = g._row_key"
        " where t._row_key is null or g._row_key is null or t._row_hash <> g._row_hash").format(
            t=table, good=GOOD), (mapping.name,))
    cur.execute("select count(*) filter (where change = 'new'), count(*) filter (where change = 'changed'),"
                " count(*) filter (where change = 'gone') from _changes")
    inserted, updated, gone = cur.fetchone()
    result.inserted, result.updated = inserted, updated
    result.deleted = gone if mapping.mode == "snapshot" else 0
    if not (inserted or updated or result.deleted):
        return
    # A key missing from an extract is gone only from a snapshot; an append-mode extract carries only some keys.
    deleted = "('changed', 'gone')" if mapping.mode == "snapshot" else "('changed')"
    cur.execute(sql.SQL(
        "delete from {t} t using _changes c"
        " where t._source = %s and t._row_key = c._row_key and c.change in {deleted}").format(
            t=table, deleted=sql.SQL(deleted)), (mapping.name,))
    fields = sql.SQL(", ").join(sql.Identifier(f.name) for f in mapping.fields)
    cur.execute(sql.SQL("select not exists (select 1 from {t})").format(t=table))
    bulk = cur.fetchone()[0]
    with _indexes_rebuilt_after(cur, table) if bulk else contextlib.nullcontext():
        cur.execute(sql.SQL(
            "insert into {t} (_source, _source_file, _row_key, _record, _loaded_at, _batch_id, _row_hash,"
            " _nulled, {f})"
            " select %s, (%s::text[])[_file_order + 1], g._row_key, _record, now(), %s, _row_hash, _nulled, {f}"
            " from {good} g join _changes c on c._row_key = g._row_key and c.change in ('new', 'changed')").format(
                t=table, f=fields, good=GOOD), (mapping.name, files, batch_id))


def _roomy_temp_buffers(cur) -> None:
    """A load's scratch tables live in temp buffers (8 MB by default): give them room to stay in memory.
    PostgreSQL refuses the change once the session has used a temp table; then the setting stays as it is."""
    cur.execute("savepoint temp_buffers")
    try:
        cur.execute("set temp_buffers = '1GB'")
    except psycopg2.Error:
        cur.execute("rollback to savepoint temp_buffers")


def prepare_target(conn: psycopg2.extensions.connection, mapping: Mapping) -> None:
    """Create the raw table a mapping lands in, so that models over it work before its first load."""
    ensure_landing_schema(conn)
    with conn.cursor() as cur:
        _ensure_target(cur, mapping)
    conn.commit()


def get_cursor(conn: psycopg2.extensions.connection, source: str) -> datetime | None:
    with conn.cursor() as cur:
        cur.execute(f"select cursor from {RAW_SCHEMA}._cursors where source = %s", (source,))
        row = cur.fetchone()
    return row[0] if row else None


def set_cursor(conn: psycopg2.extensions.connection, source: str, cursor: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"insert into {RAW_SCHEMA}._cursors (source, cursor) values (%s, %s) on conflict (source)"
            " do update set cursor = greatest(_cursors.cursor, excluded.cursor), updated_at = now()",
            (source, cursor))
    conn.commit()


class _NotClean(Exception):
    """The optimistic path met a row it cannot load as it is."""


def _copy_all(cur, extracts: list[Extract], batch_id: str, result: LoadResult,
              progress: _Progress) -> list[tuple[sql.Identifier, int]]:
    """COPY every extract into its own scratch table first, so that typing reports progress against the total."""
    lands = []
    for order, extract in enumerate(extracts):
        land_table = _land_table(cur, batch_id, order, len(extract.header))
        with result.step("copy"):
            rows = extract.copy_into(cur, land_table)
        progress.copied(order, extract.name, rows)
        lands.append((land_table, rows))
    return lands


def _replaceable(cur, table: sql.Identifier) -> bool:
    """Whether the table can be swapped for another: no view refers to it, and it carries no grants or comments."""
    cur.execute("select c.relacl is null and not exists (select 1 from pg_depend d where d.refobjid = c.oid"
                " and d.classid = 'pg_rewrite'::regclass) and not exists (select 1 from pg_description d"
                " where d.objoid = c.oid and d.classoid = 'pg_class'::regclass)"
                " from pg_class c where c.oid = %s::regclass", (table.as_string(cur),))
    return cur.fetchone()[0]


def _typed_rows(mapping: Mapping, extracts: list[Extract], lands: list[sql.Identifier], batch_id: str,
                columns: list[tuple[str, str, bool]], offsets: list[int] | None = None) -> sql.Composable:
    """Every file's clean rows, shaped like the raw table: each value cast to its column's declared type.
    `offsets` are the records before each land table's first (a file's second half)."""
    row_key = sql.SQL("_row_key") if mapping.key else sql.SQL(
        "_row_hash || ':' || row_number() over (partition by _row_hash order by _record)")
    fixed = {"_row_key": row_key, "_record": sql.SQL("_record"), "_loaded_at": sql.SQL("now()"),
             "_batch_id": sql.Literal(batch_id), "_row_hash": sql.SQL("_row_hash"), "_nulled": sql.SQL("_nulled"),
             "_source": sql.Literal(mapping.name), **{f.name: sql.Identifier(f.name) for f in mapping.fields}}
    selects = []
    for order, (extract, land) in enumerate(zip(extracts, lands, strict=True)):
        offset = offsets[order] if offsets else 0
        values = {**fixed, "_source_file": sql.Literal(extract.name),
                  **({"_record": sql.SQL("_record + {}").format(sql.Literal(offset))} if offset else {})}
        selects.append(sql.SQL("select {v} from ({typed}) t{i} where cardinality(_errors) = 0").format(
            # A column only an earlier version of the mapping had stays empty, as an INSERT would leave it.
            v=sql.SQL(", ").join(sql.SQL("cast({} as {}) as {}").format(
                values.get(name, sql.SQL("null")), sql.SQL(kind), sql.Identifier(name)) for name, kind, _ in columns),
            typed=_typed_select(mapping, extract.header, extract.name, False, land), i=sql.Literal(order)))
    return sql.SQL(" union all ").join(selects)


def _typed_like_target(cur, mapping: Mapping, extracts: list[Extract], lands: list[sql.Identifier],
                       batch_id: str, columns: list[tuple[str, str, bool]]) -> tuple[sql.Identifier, int]:
    """The typed rows in a new table, made by one CREATE TABLE AS, which PostgreSQL runs with parallel workers
    (an INSERT ... SELECT runs on one core). Answers the table and its rows."""
    typed = sql.Identifier(RAW_SCHEMA, f"_typed_{uuid.UUID(batch_id).hex}")
    cur.execute(sql.SQL("create table {t} as {s}").format(
        t=typed, s=_typed_rows(mapping, extracts, lands, batch_id, columns)))
    return typed, cur.rowcount


def _sibling(conn: psycopg2.extensions.connection) -> psycopg2.extensions.connection:
    """Another connection to the database `conn` is connected to, as the same user."""
    return psycopg2.connect(**conn.info.dsn_parameters, password=conn.info.password)


def _halves_table(mapping: Mapping, batch_id: str | None = None, part: str = "") -> sql.Identifier:
    """A table a load in halves fills before it swaps it in; without a batch, the prefix of them all."""
    prefix = f"_halves_{hashlib.md5(mapping.target.encode()).hexdigest()[:8]}_"
    return sql.Identifier(RAW_SCHEMA, prefix + (f"{uuid.UUID(batch_id).hex}_{part}" if batch_id else ""))


def _drop_orphaned_halves(cur, mapping: Mapping) -> None:
    """A load killed before its swap leaves its halves tables behind: under the target's lock, no load of the
    same target is running, so every such table is an orphan."""
    prefix = _halves_table(mapping).strings[1]
    cur.execute("select format('%%I.%%I', n.nspname, c.relname) from pg_class c join pg_namespace n"
                " on n.oid = c.relnamespace where n.nspname = %s and left(c.relname, %s) = %s",
                (RAW_SCHEMA, len(prefix), prefix))
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("drop table {}").format(sql.SQL(name)))


@dataclass(frozen=True)
class _Index:
    name: str  # as the raw table has it
    using: str  # its definition from USING on, the same for any table
    unique: bool
    constraint: str | None  # the primary key or unique constraint it backs
    primary: bool


def _index_plan(cur, table: sql.Identifier) -> list[_Index] | None:
    """The raw table's indexes, to build on another table and rename; None when it has a constraint that is not
    an index (a check, a foreign key) or an index whose definition does not read as expected."""
    cur.execute("select count(*) from pg_constraint where conrelid = %s::regclass and contype not in ('p', 'u')",
                (table.as_string(cur),))
    if cur.fetchone()[0]:
        return None
    cur.execute("select c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, k.conname, k.contype = 'p',"
                " i.indrelid::regclass::text from pg_index i join pg_class c on c.oid = i.indexrelid"
                " left join pg_constraint k on k.conindid = i.indexrelid where i.indrelid = %s::regclass",
                (table.as_string(cur),))
    plan = []
    for name, definition, unique, constraint, primary, relation in cur.fetchall():
        _, on, using = definition.partition(f" ON {relation} USING ")
        if not on:
            return None
        plan.append(_Index(name, using, unique, constraint, bool(primary)))
    return plan


def _half(conn: psycopg2.extensions.connection, mapping: Mapping, extracts: list[Extract], copies: list[Copy],
          part: str, batch_id: str, columns: list[tuple[str, str, bool]], copied: Future, offsets: Future | None,
          declared: bool = False, before_commit: Callable[[psycopg2.extensions.cursor], int] = lambda cur: 0) -> int:
    """One half of every file, on a sibling connection: copy it (its records per file into `copied`), type it into
    a new halves table once `offsets` (the first halves' records) are known, then `before_commit`, and commit.
    A `declared` table, the one swapped in, carries the raw table's NOT NULLs from the start (no scan to set them
    later) and is filled by an INSERT; the other, only read once by the first before it is dropped, is created as
    an unlogged table by CREATE TABLE AS, so that its commit does not wait for its file to reach the disk. Answers
    the rows in the table."""
    try:
        with conn.cursor() as cur:
            cur.execute("set timezone = %s", (mapping.timezone,))
            lands, reads = [], []
            for order, (extract, copy) in enumerate(zip(extracts, copies, strict=True)):
                land = _land_table(cur, batch_id, f"{part}{order}", len(extract.header))
                reads.append(copy(cur, land))
                lands.append(land)
            copied.set_result(reads)
            halves_table = _halves_table(mapping, batch_id, part)
            rows = _typed_rows(mapping, extracts, lands, batch_id, columns, offsets.result() if offsets else None)
            # Two connections each typing a half already keep both cores busy: no parallel workers on top.
            cur.execute("set local max_parallel_workers_per_gather = 0")
            if declared:
                cur.execute(sql.SQL("create table {t} ({c}); insert into {t} {s}").format(
                    t=halves_table, s=rows, c=sql.SQL(", ").join(
                        sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(kind),
                                                 sql.SQL(" not null" if not_null else ""))
                        for name, kind, not_null in columns)))
            else:
                cur.execute(sql.SQL("create unlogged table {t} as {s}").format(t=halves_table, s=rows))
            loaded = cur.rowcount
            if loaded != sum(reads):
                raise _NotClean
            cur.execute(sql.SQL("drop table {}").format(sql.SQL(", ").join(lands)))
            loaded += before_commit(cur)
        conn.commit()
        return loaded
    except BaseException as error:
        if not copied.done():
            copied.set_exception(error)
        with contextlib.suppress(psycopg2.Error):
            conn.rollback()  # its locks would keep the load from dropping the other half's table
        raise


def _build_index(conn: psycopg2.extensions.connection, table: sql.Identifier, name: str, index: _Index) -> None:
    try:
        with conn.cursor() as cur:
            _sort_memory(cur)
            cur.execute(sql.SQL("create {u} index {n} on {t} using {d}").format(
                u=sql.SQL("unique" if index.unique else ""), n=sql.Identifier(name), t=table, d=sql.SQL(index.using)))
        conn.commit()
    except BaseException:
        with contextlib.suppress(psycopg2.Error):
            conn.rollback()  # a repeated key: the load drops the table next, which this lock would block
        raise


def _land_in_halves(cur, mapping: Mapping, extracts: list[Extract], halves: list[tuple[Copy, Copy]],
                    indexes: list[_Index], batch_id: str, result: LoadResult, progress: _Progress) -> bool:
    """A first load of large files, in halves on two sibling connections: PostgreSQL copies, types and indexes on
    one core per statement, so one connection leaves a core idle. Each sibling copies and types its half of every
    file into a table of its own (new in its transaction: no WAL); the first takes in the second's rows and
    commits; both build its indexes at once; and this transaction swaps it in for the (empty) raw table. Answers
    False, the tables dropped, when a row is not clean or a key repeats."""
    table = _target(mapping)
    first_table, second_table = _halves_table(mapping, batch_id, "a"), _halves_table(mapping, batch_id, "b")
    columns = _columns_of(cur, table)
    _drop_orphaned_halves(cur, mapping)
    with contextlib.ExitStack() as stack:
        siblings = [stack.enter_context(contextlib.closing(_sibling(cur.connection))) for _ in range(2)]
        try:
            first, second = Future(), Future()
            with ThreadPoolExecutor(2, thread_name_prefix="civicflow-halves") as pool:
                with result.step("copy"):
                    typed_second = pool.submit(_half, siblings[1], mapping, extracts, [h[1] for h in halves], "b",
                                               batch_id, columns, second, first)

                    def take_in_second(into: psycopg2.extensions.cursor) -> int:
                        typed_second.result()
                        into.execute(sql.SQL("insert into {a} select * from {b}").format(a=first_table, b=second_table))
                        appended = into.rowcount
                        into.execute(sql.SQL("drop table {}").format(second_table))
                        return appended

                    typed = pool.submit(_half, siblings[0], mapping, extracts, [h[0] for h in halves], "a",
                                        batch_id, columns, first, None, True, take_in_second)
                    reads = [a + b for a, b in zip(first.result(), second.result(), strict=True)]
                for order, (extract, read) in enumerate(zip(extracts, reads, strict=True)):
                    progress.copied(order, extract.name, read)
                with result.step("type"):
                    loaded = typed.result()
                progress.rows("typed and inserted", loaded)
                names = [f"{first_table.strings[1]}_{i}" for i in range(len(indexes))]
                with result.step("indexes"):
                    free, taking = list(siblings), threading.Lock()

                    def build(i: int) -> None:
                        with taking:
                            conn = free.pop()
                        _build_index(conn, first_table, names[i], indexes[i])
                        with taking:
                            free.append(conn)

                    # The primary key last: a GiST index takes longest.
                    list(pool.map(build, sorted(range(len(indexes)), key=lambda i: indexes[i].primary)))
        except (_NotClean, psycopg2.IntegrityError, psycopg2.DataError, psycopg2.InternalError):
            cur.execute(sql.SQL("drop table if exists {}, {}").format(first_table, second_table))
            progress.log.info(f"{progress.label}: not every row is clean; loading again with quarantine and merge")
            progress.total = 0
            return False
    with result.step("insert"):
        cur.execute(sql.SQL("drop table {t}; alter table {h} rename to {n}").format(
            t=table, h=first_table, n=sql.Identifier(mapping.target)))
        for name, index in zip(names, indexes, strict=True):
            if index.constraint:
                cur.execute(sql.SQL("alter table {t} add constraint {c} {k} using index {i}").format(
                    t=table, c=sql.Identifier(index.constraint), i=sql.Identifier(name),
                    k=sql.SQL("primary key" if index.primary else "unique")))
            else:
                cur.execute(sql.SQL("alter index {i} rename to {n}").format(
                    i=sql.Identifier(RAW_SCHEMA, name), n=sql.Identifier(index.name)))
    result.files = [FileStats(extract.name, read) for extract, read in zip(extracts, reads, strict=True)]
    result.inserted = loaded
    return True


def _land_into_empty_table(cur, mapping: Mapping, extracts: list[Extract], batch_id: str,
                           result: LoadResult, progress: _Progress) -> bool:
    """The first load of a table, when every row is clean: type the files into a new table shaped like the raw
    one, then swap it in (no view refers to the raw table yet), or else append its rows in one plain pass.
    Large files of a keyed source go in halves (see `_land_in_halves`; a keyless source numbers its identical
    rows across the whole extract).

    Any row to quarantine, duplicate key or value that needs the safe casts rolls this back, and
    the caller takes the general path. Creating the new table, or truncating the (empty) raw table, in this
    transaction lets PostgreSQL skip WAL for it under wal_level=minimal, as the embedded cluster runs."""
    table = _target(mapping)
    # The catalog first: finding where a file splits reads its first half.
    if mapping.key and _replaceable(cur, table) and (indexes := _index_plan(cur, table)) is not None \
            and (halves := [extract.halves() for extract in extracts]) and all(halves):
        return _land_in_halves(cur, mapping, extracts, halves, indexes, batch_id, result, progress)
    cur.execute("savepoint empty_table")
    try:
        with _indexes_rebuilt_after(cur, table):
            cur.execute(sql.SQL("truncate {}").format(table))
            columns = _columns_of(cur, table)
            copied = _copy_all(cur, extracts, batch_id, result, progress)
            lands = [land for land, _ in copied]
            with result.step("type"):
                typed, loaded = _typed_like_target(cur, mapping, extracts, lands, batch_id, columns)
            if loaded != sum(read for _, read in copied):
                raise _NotClean
            cur.execute(sql.SQL("drop table {}").format(sql.SQL(", ").join(lands)))
            with result.step("insert"):
                if _replaceable(cur, table):
                    cur.execute(sql.SQL("alter table {t} {n}").format(t=typed, n=sql.SQL(", ").join(
                        sql.SQL("alter column {} set not null").format(sql.Identifier(name))
                        for name, _, not_null in columns if not_null)))
                    cur.execute(sql.SQL("drop table {t}; alter table {n} rename to {name}").format(
                        t=table, n=typed, name=sql.Identifier(mapping.target)))
                else:
                    cur.execute(sql.SQL("insert into {t} select * from {n}; drop table {n}").format(t=table, n=typed))
            progress.rows("typed and inserted", loaded)
            indexing_started = time.monotonic()
        result.step_seconds["indexes"] = time.monotonic() - indexing_started
    except (_NotClean, psycopg2.IntegrityError, psycopg2.DataError, psycopg2.InternalError):
        cur.execute("rollback to savepoint empty_table")
        result.step_seconds.clear()
        progress.log.info(f"{progress.label}: not every row is clean; loading again with quarantine and merge")
        progress.total = 0
        return False
    result.files = [FileStats(extract.name, read) for extract, (_, read) in zip(extracts, copied, strict=True)]
    result.inserted = loaded
    return True


def _is_empty(cur, mapping: Mapping) -> bool:
    cur.execute(sql.SQL("select not exists (select 1 from {})").format(_target(mapping)))
    return cur.fetchone()[0]


def _land_and_merge(cur, mapping: Mapping, extracts: list[Extract], batch_id: str, result: LoadResult,
                    progress: _Progress) -> None:
    """The general path: type into a scratch table, quarantine, then merge changes into the raw table."""
    copied = _copy_all(cur, extracts, batch_id, result, progress)
    lands = [land_table for land_table, _ in copied]
    for order, (extract, (land_table, rows)) in enumerate(zip(extracts, copied, strict=True)):
        with result.step("type"):
            result.safe_typing |= _type_extract(cur, mapping, extract, order, land_table)
        result.files.append(FileStats(extract.name, rows))
        progress.rows("typed", result.read)
    with result.step("duplicates"):
        _mark_duplicates(cur, mapping)
    with result.step("quarantine"):
        counts = _quarantine(cur, mapping, extracts, lands, batch_id)
    cur.execute(sql.SQL("drop table {}").format(sql.SQL(", ").join(lands)))
    for stats, count in zip(result.files, counts, strict=True):
        stats.quarantined = count
    progress.rows("checked", result.read, f", {result.quarantined:,} quarantined")
    with result.step("merge"):
        _merge(cur, mapping, batch_id, [e.name for e in extracts], result)
    progress.rows("merged", result.loaded, f": {result.inserted:,} inserted, {result.updated:,} updated, "
                  f"{result.deleted:,} deleted, {result.unchanged:,} unchanged")


def land(conn: psycopg2.extensions.connection, mapping: Mapping, extracts: list[Extract],
         batch_id: str | None = None, log: logging.Logger = LOG) -> LoadResult:
    """Land every extract of one mapping in a single transaction (commits on success); progress goes to `log`."""
    started = time.monotonic()
    batch_id = batch_id or str(uuid.uuid4())
    result = LoadResult(mapping.name, f"{RAW_SCHEMA}.{mapping.target}", batch_id)
    progress = _Progress(log, f"{result.target} ({mapping.name})", len(extracts))
    ensure_landing_schema(conn)
    try:
        with conn.cursor() as cur:
            _roomy_temp_buffers(cur)
            cur.execute("select now()")
            started_at = cur.fetchone()[0]
            cur.execute("set local timezone = %s", (mapping.timezone,))
            # One load of a table at a time: another could not see this one's uncommitted rows.
            cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"civicflow.land:{result.target}",))
            _ensure_target(cur, mapping)
            clean_first_load = (all(e.reusable for e in extracts) and _is_empty(cur, mapping)
                                and _land_into_empty_table(cur, mapping, extracts, batch_id, result, progress))
            if not clean_first_load:
                _land_and_merge(cur, mapping, extracts, batch_id, result, progress)
            for stats in result.files:
                cur.execute(
                    f"insert into {RAW_SCHEMA}._loads values (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (batch_id, mapping.name, stats.source_file, result.target, stats.read, stats.loaded,
                     stats.quarantined, started_at))
        with result.step("commit"):
            conn.commit()
    except Exception:
        conn.rollback()
        raise
    result.seconds = time.monotonic() - started
    return result


def land_files(conn: psycopg2.extensions.connection, mapping: Mapping, paths: list[Path],
               batch_id: str | None = None, log: logging.Logger = LOG) -> LoadResult:
    return land(conn, mapping, [extract_for(mapping, p) for p in paths], batch_id, log)
