"""What changed since the last publication, worked out in the warehouse against a per-dataset state of
(key, row hash): new and changed rows, deleted keys, and a content digest for the file resources.

Candidates are rows modified since the last publication's watermark (U2's ModifiedDate), rows whose key is new,
and rows without a modified date; their hash confirms the change. `full_compare` hashes every row instead, which
also catches a field changed without its ModifiedDate moving (the daily run does that). The state is updated only
after the DataStore committed, in the same warehouse transaction that read the rows, so a crash in between
sends the same rows again next time: upserts and deletes by key make that harmless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.publish.table import PublishedTable

STATE_SCHEMA = "publish"
STATE_DDL = f"""
select pg_advisory_xact_lock(hashtext('civicflow.publish_state_schema'));
create schema if not exists {STATE_SCHEMA};
create table if not exists {STATE_SCHEMA}._datastore_sync (
    dataset text primary key,
    resource_id text not null,
    signature text not null,
    watermark timestamptz,
    row_count bigint not null,
    digest text not null,
    run_id text,
    synced_at timestamptz not null default now()
);
create table if not exists {STATE_SCHEMA}._datastore_indexes (
    resource_id text not null,
    index_name text not null,
    definition text not null,
    primary key (resource_id, index_name)
);
"""
CHANGED = "_publish_changed"
DELETED = "_publish_deleted"
DIFF = "_publish_diff"


@dataclass(frozen=True)
class SyncState:
    resource_id: str
    signature: str
    watermark: datetime | None
    row_count: int
    digest: str


@dataclass(frozen=True)
class Delta:
    full: bool  # every row goes out (first publication, a new field list, or a DataStore that disagrees)
    new: int
    changed: int  # rows that exist in the DataStore and differ
    deleted: int
    total: int  # rows in the table now
    watermark: datetime | None

    @property
    def upserts(self) -> int:
        return self.new + self.changed

    @property
    def empty(self) -> bool:
        return not (self.full or self.upserts or self.deleted)


def ensure_state_tables(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute(STATE_DDL)
    conn.commit()


def rows_table(dataset: str) -> sql.Identifier:
    return sql.Identifier(STATE_SCHEMA, f"_datastore_rows__{dataset}")


def load_state(conn: psycopg2.extensions.connection, dataset: str) -> SyncState | None:
    with conn.cursor() as cur:
        cur.execute(f"select resource_id, signature, watermark, row_count, digest from {STATE_SCHEMA}._datastore_sync "
                    "where dataset = %s", (dataset,))
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("select to_regclass(%s) is not null", (rows_table(dataset).as_string(cur),))
        if not cur.fetchone()[0]:
            return None
    return SyncState(*row)


@contextlib.contextmanager
def _in_parallel(cur) -> Iterator[None]:
    """Hashing every row: PostgreSQL prices md5 as cheap and would scan on one core (1,000,000 published requests:
    8.0 s alone, 4.0 s with its parallel workers)."""
    settings = ("parallel_setup_cost", "parallel_tuple_cost")
    cur.execute("select current_setting('parallel_setup_cost'), current_setting('parallel_tuple_cost')")
    before = cur.fetchone()
    for name in settings:
        cur.execute("select set_config(%s, '0', true)", (name,))
    yield
    for name, value in zip(settings, before, strict=True):
        cur.execute("select set_config(%s, %s, true)", (name, value))


def _not_unique(table: PublishedTable) -> ValueError:
    return ValueError(f"{table.spec.name}: the key {table.key_column} of {table.spec.table} is not unique (or empty "
                      "in some rows); the DataStore needs one row per key")


def compute_delta(conn: psycopg2.extensions.connection, table: PublishedTable, state: SyncState | None,
                  full: bool, full_compare: bool = False) -> Delta:
    """Fill the temp tables _publish_changed (key, row_hash, is_new) and _publish_deleted (key)."""
    spec = table.spec
    key, row_hash = table.key_sql("t"), table.row_hash_sql("t")
    modified = sql.Identifier("t", spec.modified_field) if spec.modified_field else None
    with conn.cursor() as cur:
        cur.execute(sql.SQL("drop table if exists {}, {}, {}").format(
            sql.Identifier(CHANGED), sql.Identifier(DELETED), sql.Identifier(DIFF)))
        if full or state is None:
            with _in_parallel(cur):
                cur.execute(sql.SQL("create temp table {c} as select {k} as key, {h} as row_hash, true as is_new "
                                    "from {t} t").format(c=sql.Identifier(CHANGED), k=key, h=row_hash,
                                                         t=table.relation))
            cur.execute(sql.SQL("create temp table {d} (key text)").format(d=sql.Identifier(DELETED)))
        else:
            m = modified if modified is not None else sql.SQL("null::timestamptz")
            if full_compare or modified is None or state.watermark is None:
                candidate = sql.SQL("true")
            else:
                candidate = sql.SQL("s.key is null or c.modified is null or c.modified >= %(watermark)s")
            # One pass over the table and the state: new, changed (hashed only when a candidate: CASE, which the
            # planner may not reorder) and gone keys, plus the rows at or past the watermark, for the next one.
            cur.execute(sql.SQL(
                """
                create temp table {diff} as
                select d.* from (
                    select coalesce(c.key, s.key) as key,
                           case when c.key is not null and ({cand}) then md5(c.row::text)::uuid end as row_hash,
                           s.row_hash as old_hash, s.key is null as is_new, c.key is null as gone, c.modified
                    from (select {k} as key, t as row, {m} as modified from {t} t) c
                    full join {rows} s on s.key = c.key
                ) d
                where d.gone or (d.row_hash is not null and d.row_hash is distinct from d.old_hash)
                   or d.modified >= %(watermark)s
                """).format(diff=sql.Identifier(DIFF), cand=candidate, k=key, m=m, t=table.relation,
                            rows=rows_table(spec.name)), {"watermark": state.watermark})
            cur.execute(sql.SQL(
                "create temp table {c} as select key, row_hash, is_new from {d} where not gone "
                "and row_hash is not null and row_hash is distinct from old_hash").format(
                    c=sql.Identifier(CHANGED), d=sql.Identifier(DIFF)))
            cur.execute(sql.SQL("create temp table {x} as select key from {d} where gone").format(
                x=sql.Identifier(DELETED), d=sql.Identifier(DIFF)))
        # A full delta holds every row: the primary key save_state builds on them finds a repeated or empty key
        # without a sort of its own here.
        unique = sql.SQL("true" if full or state is None else "count(distinct key) = count(*)")
        cur.execute(sql.SQL("select count(*) filter (where is_new), count(*) filter (where not is_new), {u} "
                            "from {c}").format(u=unique, c=sql.Identifier(CHANGED)))
        new, changed, unique = cur.fetchone()
        if not unique:
            raise _not_unique(table)
        cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(DELETED)))
        deleted = cur.fetchone()[0]
        if full or state is None:
            aggregate = sql.SQL("max({})").format(modified) if modified else sql.SQL("null::timestamptz")
            cur.execute(sql.SQL("select count(*), {} from {} t").format(aggregate, table.relation))
            total, watermark = cur.fetchone()
        else:
            # Every row modified at or after the old watermark is in the diff, so its maximum is the table's.
            cur.execute(sql.SQL("select max(modified) from {} where not gone").format(sql.Identifier(DIFF)))
            latest = cur.fetchone()[0]
            watermark = max(w for w in (latest, state.watermark) if w is not None) \
                if latest or state.watermark else None
            total = state.row_count + new - deleted
    return Delta(full or state is None, new, changed, deleted, total, watermark)


def save_state(conn: psycopg2.extensions.connection, table: PublishedTable, resource_id: str, delta: Delta,
               run_id: str) -> str:
    """Apply the delta to the state (inside the reading transaction) and return the new content digest."""
    spec = table.spec
    rows = rows_table(spec.name)
    with conn.cursor() as cur:
        if delta.full:
            cur.execute(sql.SQL("drop table if exists {}").format(rows))
            cur.execute(sql.SQL("create table {r} as select key, row_hash from {c}").format(
                r=rows, c=sql.Identifier(CHANGED)))
            try:
                cur.execute(sql.SQL("alter table {} add primary key (key)").format(rows))
            except (psycopg2.errors.UniqueViolation, psycopg2.errors.NotNullViolation) as error:
                raise _not_unique(table) from error
        else:
            cur.execute(sql.SQL(
                "insert into {r} (key, row_hash) select key, row_hash from {c} "
                "on conflict (key) do update set row_hash = excluded.row_hash").format(
                    r=rows, c=sql.Identifier(CHANGED)))
            cur.execute(sql.SQL("delete from {r} s using {d} d where s.key = d.key").format(
                r=rows, d=sql.Identifier(DELETED)))
        # Order-free: a sum of 60-bit slices of the row hashes, with the count and the field list.
        cur.execute(sql.SQL(
            "select count(*), coalesce(sum(('x' || left(replace(row_hash::text, '-', ''), 15))::bit(60)"
            "::bigint::numeric), 0) from {}").format(rows))
        count, total = cur.fetchone()
        digest = f"{table.signature}:{count}:{total}"
        cur.execute(
            f"""
            insert into {STATE_SCHEMA}._datastore_sync
                (dataset, resource_id, signature, watermark, row_count, digest, run_id, synced_at)
            values (%s, %s, %s, %s, %s, %s, %s, now())
            on conflict (dataset) do update set resource_id = excluded.resource_id,
                signature = excluded.signature, watermark = excluded.watermark, row_count = excluded.row_count,
                digest = excluded.digest, run_id = excluded.run_id, synced_at = excluded.synced_at
            """,
            (spec.name, resource_id, table.signature, delta.watermark, count, digest, run_id))
    return digest


def forget_state(conn: psycopg2.extensions.connection, dataset: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"delete from {STATE_SCHEMA}._datastore_sync where dataset = %s", (dataset,))
        cur.execute(sql.SQL("drop table if exists {}").format(rows_table(dataset)))
