"""Rows into CKAN's DataStore: the table is always created through `datastore_create` (fields, types, primary key,
so CKAN knows it); the rows then go one of two ways.

- `CopyTarget`, when the DataStore database is reachable (the local CKAN): like CKAN's xloader, rows stream from
  the warehouse into the table with COPY. `_full_text` is left null, so CKAN's own trigger
  (populate_full_text_trigger) computes it exactly as for `datastore_upsert`. A first load runs in parallel
  slices with CKAN's full-text indexes dropped, then rebuilds them from their saved definitions; a delta is one
  transaction: delete the gone keys, `insert ... on conflict do update` the changed rows.
- `ApiTarget`, for a remote CKAN: `datastore_upsert` in large batches and `datastore_delete` by key lists.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.publish.client import CkanClient
from civicflow_assets.publish.sync import CHANGED, DELETED, STATE_SCHEMA
from civicflow_assets.publish.table import TIMEZONE, PublishedTable

COPY_BUFFER = 1 << 20
API_BATCH_ROWS = 10_000
API_DELETE_BATCH = 1_000


@dataclass
class DatastoreResult:
    method: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class Timer:
    def __init__(self, result: DatastoreResult):
        self.result = result

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.result.seconds[name] = round(self.result.seconds.get(name, 0.0) + time.monotonic() - started, 3)


def pipe_copy(source: psycopg2.extensions.cursor, copy_out: str, target: psycopg2.extensions.cursor,
              copy_in: str) -> None:
    """COPY ... TO STDOUT on one connection straight into COPY ... FROM STDIN on another, through an OS pipe."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=COPY_BUFFER) as sink:
                source.copy_expert(copy_out, sink, size=COPY_BUFFER)
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    producer = threading.Thread(target=produce, name="copy-out", daemon=True)
    producer.start()
    try:
        with os.fdopen(read_fd, "rb", buffering=COPY_BUFFER) as stream:
            target.copy_expert(copy_in, stream, size=COPY_BUFFER)
    finally:
        producer.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]


def export_snapshot(conn: psycopg2.extensions.connection) -> str:
    """The snapshot of `conn`'s open transaction, for other connections to read exactly what it reads."""
    with conn.cursor() as cur:
        cur.execute("select pg_export_snapshot()")
        return cur.fetchone()[0]


def snapshot_connection(url: str, snapshot: str) -> psycopg2.extensions.connection:
    """A read-only connection to the warehouse in an exported snapshot, timestamps rendered in local time (F5)."""
    conn = psycopg2.connect(url)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    with conn.cursor() as cur:
        cur.execute("set transaction snapshot %s", (snapshot,))
        cur.execute("set time zone %s", (TIMEZONE,))
    return conn


# DataStore types whose value as JSON, read back as text, is the value as text (numbers and booleans print the same).
_JSON_AS_TEXT = {"int4", "int8", "numeric", "float8", "bool"}


def full_text(table: PublishedTable, alias: str) -> sql.Composable:
    """What populate_full_text_trigger (ckanext/datastore/set_permissions.sql) computes for a row: to_tsvector of
    its values as JSON text, joined by spaces, nulls skipped. Spelled per column instead of through row_to_json
    and json_each_text: the same tsvector (tests compare it with the trigger's), a fifth less CPU per row. Only dates
    and times go through JSON (ISO 8601 with a T); text is itself, numbers and booleans their text, which halves
    the cost of the string to_tsvector reads."""
    values = []
    for column in table.columns:
        ref = sql.SQL("{}.{}").format(sql.Identifier(alias), column.ident)
        if column.datastore_type == "text":
            values.append(ref)
        elif column.datastore_type in _JSON_AS_TEXT:
            values.append(sql.SQL("{}::text").format(ref))
        else:
            values.append(sql.SQL("to_json({}) #>> '{{}}'").format(ref))
    return sql.SQL("to_tsvector(concat_ws(' ', {}))").format(sql.SQL(", ").join(values))


def _columns(table: PublishedTable) -> sql.Composable:
    return sql.SQL(", ").join(c.ident for c in table.columns)


class CopyTarget:
    method = "copy"

    def __init__(self, url: str, workers: int | None = None):
        self.url = url
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))

    def _connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(self.url, options="-c statement_timeout=0")

    def has_table(self, resource_id: str) -> bool:
        with contextlib.closing(self._connect()) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass(%s) is not null", (sql.Identifier(resource_id).as_string(cur),))
            return bool(cur.fetchone()[0])

    def count(self, resource_id: str) -> int:
        with contextlib.closing(self._connect()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(resource_id)))
            return cur.fetchone()[0]

    # -- first load

    def full_load(self, warehouse: psycopg2.extensions.connection, warehouse_url: str, table: PublishedTable,
                  resource_id: str, rows_written: Callable[[], None] = lambda: None) -> DatastoreResult:
        """`rows_written` is called once the rows are in, before the indexes are rebuilt."""
        result = DatastoreResult(self.method)
        timer = Timer(result)
        target = sql.Identifier(resource_id)
        snapshot = export_snapshot(warehouse)
        with timer.step("drop_indexes"):
            indexes = self._set_aside_indexes(warehouse_url, resource_id)
        with timer.step("copy"):
            slices = [(i, self.workers) for i in range(self.workers)]
            with ThreadPoolExecutor(self.workers) as pool:
                counts = list(pool.map(lambda s: self._load_slice(warehouse_url, snapshot, table, target, *s),
                                       slices))
        result.inserted = sum(counts)
        rows_written()
        with timer.step("indexes"):
            self._rebuild_indexes(warehouse_url, resource_id, indexes)
        with timer.step("analyze"), contextlib.closing(self._connect()) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("analyze {}").format(target))
        return result

    def _set_aside_indexes(self, warehouse_url: str, resource_id: str) -> dict[str, str]:
        """Empty the table and drop its full-text indexes (CKAN's), saving their definitions in the warehouse
        first, so a crash before they are rebuilt cannot lose them."""
        with contextlib.closing(self._connect()) as conn, conn.cursor() as cur:
            cur.execute(
                "select c.relname, pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c "
                "on c.oid = i.indexrelid where i.indrelid = to_regclass(%s) and not i.indisunique "
                "and not i.indisprimary", (sql.Identifier(resource_id).as_string(cur),))
            present = dict(cur.fetchall())
            with contextlib.closing(psycopg2.connect(warehouse_url)) as side, side.cursor() as save:
                for name, definition in present.items():
                    save.execute(f"insert into {STATE_SCHEMA}._datastore_indexes values (%s, %s, %s) "
                                 "on conflict do nothing", (resource_id, name, definition))
                save.execute(f"select index_name, definition from {STATE_SCHEMA}._datastore_indexes "
                             "where resource_id = %s", (resource_id,))
                saved = dict(save.fetchall())
                side.commit()
            cur.execute(sql.SQL("truncate {}").format(sql.Identifier(resource_id)))
            for name in present:
                cur.execute(sql.SQL("drop index {}").format(sql.Identifier(name)))
            conn.commit()
        return saved

    def _load_slice(self, warehouse_url: str, snapshot: str, table: PublishedTable, target: sql.Identifier,
                    part: int, parts: int) -> int:
        with contextlib.closing(snapshot_connection(warehouse_url, snapshot)) as source, \
                contextlib.closing(self._connect()) as sink:
            with source.cursor() as out, sink.cursor() as into:
                where = sql.SQL("true") if parts == 1 else sql.SQL("abs(hashtext({k})::bigint) % {n} = {i}").format(
                    k=table.key_sql("t"), n=sql.Literal(parts), i=sql.Literal(part))
                copy_out = sql.SQL("copy (select {s} from {t} t where {w}) to stdout").format(
                    s=table.text_select("t"), t=table.relation, w=where)
                into.execute(sql.SQL("create temp table _slice on commit drop as select {c} from {t} limit 0").format(
                    c=_columns(table), t=target))
                pipe_copy(out, copy_out.as_string(out), into, "copy _slice from stdin")
                # CKAN's trigger expression, set-based: the trigger then sees _full_text set and returns at once.
                into.execute(sql.SQL("insert into {t} ({c}, _full_text) select {c}, {f} from _slice s").format(
                    t=target, c=_columns(table), f=full_text(table, "s")))
                rows = into.rowcount
            sink.commit()
            source.rollback()
        return rows

    def _rebuild_indexes(self, warehouse_url: str, resource_id: str, indexes: dict[str, str]) -> None:
        def build(definition: str) -> None:
            with contextlib.closing(self._connect()) as conn:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("set maintenance_work_mem = '256MB'")
                    cur.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))

        # Largest first: the slowest index should not start last.
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(build, sorted(indexes.values(), key=lambda d: "_full_text" not in d)))
        with contextlib.closing(psycopg2.connect(warehouse_url)) as side, side.cursor() as cur:
            cur.execute(f"delete from {STATE_SCHEMA}._datastore_indexes where resource_id = %s", (resource_id,))
            side.commit()

    # -- deltas

    def apply_delta(self, warehouse: psycopg2.extensions.connection, table: PublishedTable,
                    resource_id: str) -> DatastoreResult:
        result = DatastoreResult(self.method)
        timer = Timer(result)
        target, key = sql.Identifier(resource_id), sql.Identifier(table.key_column)
        columns = _columns(table)
        with contextlib.closing(self._connect()) as conn:
            with warehouse.cursor() as out, conn.cursor() as into:
                into.execute(sql.SQL("create temp table _stage on commit drop as select {c} from {t} limit 0").format(
                    c=columns, t=target))
                into.execute(sql.SQL("create temp table _gone on commit drop as select {k} from {t} limit 0").format(
                    k=key, t=target))
                with timer.step("copy"):
                    changed = sql.SQL("copy (select {s} from {t} t join {c} c on c.key = {k}) to stdout").format(
                        s=table.text_select("t"), t=table.relation, c=sql.Identifier(CHANGED), k=table.key_sql("t"))
                    pipe_copy(out, changed.as_string(out), into, "copy _stage from stdin")
                    gone = sql.SQL("copy (select key from {}) to stdout").format(sql.Identifier(DELETED))
                    pipe_copy(out, gone.as_string(out), into, "copy _gone from stdin")
                with timer.step("apply"):
                    into.execute(sql.SQL("delete from {t} t using _gone g where t.{k} = g.{k}").format(t=target, k=key))
                    result.deleted = into.rowcount
                    # _full_text as CKAN's trigger computes it, set-based (as in a full load): the trigger then
                    # returns at once instead of building it row by row.
                    updates = sql.SQL(", ").join(
                        [sql.SQL("{c} = excluded.{c}").format(c=c.ident)
                         for c in table.columns if c.name != table.key_column]
                        + [sql.SQL('"_full_text" = excluded."_full_text"')])
                    into.execute(sql.SQL(
                        "with up as (insert into {t} ({c}, _full_text) select {c}, {f} from _stage s"
                        " on conflict ({k}) do update set {u} returning (xmax = 0) as inserted) "
                        "select count(*) filter (where inserted), count(*) filter (where not inserted) from up").format(
                            t=target, c=columns, f=full_text(table, "s"), k=key, u=updates))
                    result.inserted, result.updated = into.fetchone()
            conn.commit()
        return result


class ApiTarget:
    """datastore_upsert / datastore_delete through the API: for a CKAN whose database is out of reach."""

    method = "api"

    def __init__(self, client: CkanClient, batch_rows: int = API_BATCH_ROWS):
        self.client = client
        self.batch_rows = batch_rows

    def count(self, resource_id: str) -> int:
        return int(self.client.call("datastore_search", {"resource_id": resource_id, "limit": 0})["total"])

    def _batches(self, warehouse: psycopg2.extensions.connection, query: sql.Composable) -> Iterator[list[dict]]:
        with warehouse.cursor(name="publish_api_rows") as cur:
            cur.itersize = self.batch_rows
            cur.execute(query)
            while rows := cur.fetchmany(self.batch_rows):
                yield [json.loads(r[0]) for r in rows]

    def _send(self, resource_id: str, records: list[dict], method: str) -> None:
        try:
            self.client.call("datastore_upsert", {"resource_id": resource_id, "records": records,
                                                  "method": method, "force": True})
        except Exception as error:
            # An insert retried after CKAN committed it meets its own rows: upsert is the same, idempotently.
            if method != "insert" or "uniqueness" not in str(error):
                raise
            self.client.call("datastore_upsert", {"resource_id": resource_id, "records": records,
                                                  "method": "upsert", "force": True})

    def full_load(self, warehouse: psycopg2.extensions.connection, table: PublishedTable,
                  resource_id: str) -> DatastoreResult:
        result = DatastoreResult(self.method)
        timer = Timer(result)
        if self.count(resource_id):
            with timer.step("truncate"):
                self.client.call("datastore_delete", {"resource_id": resource_id, "force": True})
                self.client.call("datastore_create", {"resource_id": resource_id, "force": True,
                                                      "fields": table.datastore_fields(),
                                                      "primary_key": [table.key_column]})
        query = sql.SQL("select row_to_json(x)::text from (select {s} from {t} t) x").format(
            s=table.json_select("t"), t=table.relation)
        with timer.step("upsert"):
            for records in self._batches(warehouse, query):
                self._send(resource_id, records, "insert")
                result.inserted += len(records)
        return result

    def apply_delta(self, warehouse: psycopg2.extensions.connection, table: PublishedTable,
                    resource_id: str) -> DatastoreResult:
        result = DatastoreResult(self.method)
        timer = Timer(result)
        with timer.step("delete"), warehouse.cursor() as cur:
            cur.execute(sql.SQL("select key from {}").format(sql.Identifier(DELETED)))
            gone = [r[0] for r in cur.fetchall()]
            for start in range(0, len(gone), API_DELETE_BATCH):
                batch = gone[start:start + API_DELETE_BATCH]
                self.client.call("datastore_delete", {"resource_id": resource_id, "force": True,
                                                      "filters": {table.key_column: batch}})
            result.deleted = len(gone)
        query = sql.SQL("select row_to_json(x)::text, c.is_new from (select {s} from {t} t) x "
                        "join {c} c on c.key = x.{k}::text").format(
            s=table.json_select("t"), t=table.relation, c=sql.Identifier(CHANGED), k=sql.Identifier(table.key_column))
        with timer.step("upsert"), warehouse.cursor(name="publish_api_delta") as cur:
            cur.itersize = self.batch_rows
            cur.execute(query)
            while rows := cur.fetchmany(self.batch_rows):
                self._send(resource_id, [json.loads(r[0]) for r in rows], "upsert")
                result.inserted += sum(1 for r in rows if r[1])
                result.updated += sum(1 for r in rows if not r[1])
        return result
