"""publish.audit: one row per resource per publication — what was sent, what it hashed to, what the checks said."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extensions

AUDIT_DDL = """
select pg_advisory_xact_lock(hashtext('civicflow.publish_audit_schema'));
create schema if not exists publish;
create table if not exists publish.audit (
    id bigserial primary key,
    run_id text not null,
    dataset text not null,
    ckan_dataset text not null,
    ckan_url text not null,
    resource text not null,
    resource_id text,
    action text not null,
    method text,
    rows_inserted bigint not null default 0,
    rows_updated bigint not null default 0,
    rows_deleted bigint not null default 0,
    row_count bigint,
    content_hash text,
    previous_hash text,
    bytes bigint,
    check_summary jsonb not null default '{}',
    details jsonb not null default '{}',
    seconds double precision,
    published_at timestamptz not null default clock_timestamp()
);
create index if not exists audit_dataset_published_at on publish.audit (dataset, published_at);
create index if not exists audit_run_id on publish.audit (run_id);
"""


@dataclass
class ResourceOutcome:
    """What happened to one resource (or to the dataset's metadata, resource 'metadata')."""

    role: str
    name: str
    action: str  # created, updated, unchanged, deleted; deferred: a file left for its refresh window
    resource_id: str | None = None
    method: str | None = None
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    row_count: int | None = None
    content_hash: str | None = None
    previous_hash: str | None = None
    bytes: int | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def sent(self) -> bool:
        return self.action not in ("unchanged", "deferred")


def ensure_audit_table(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute(AUDIT_DDL)
    conn.commit()


def record(conn: psycopg2.extensions.connection, *, run_id: str, dataset: str, ckan_dataset: str, ckan_url: str,
           outcomes: list[ResourceOutcome], check_summary: dict[str, Any]) -> None:
    with conn.cursor() as cur:
        for o in outcomes:
            cur.execute(
                """
                insert into publish.audit (run_id, dataset, ckan_dataset, ckan_url, resource, resource_id, action,
                    method, rows_inserted, rows_updated, rows_deleted, row_count, content_hash, previous_hash, bytes,
                    check_summary, details, seconds)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (run_id, dataset, ckan_dataset, ckan_url, o.role, o.resource_id, o.action, o.method, o.rows_inserted,
                 o.rows_updated, o.rows_deleted, o.row_count, o.content_hash, o.previous_hash, o.bytes,
                 json.dumps(check_summary), json.dumps(o.details, default=str), round(o.seconds, 3)))
    conn.commit()
