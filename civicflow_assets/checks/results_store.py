"""quality.check_results and quality.redaction_counts: every run's check summary, kept for the transparency report."""

from __future__ import annotations

import json
from datetime import datetime

import psycopg2.extensions

from civicflow_assets.checks.summary import RuleResult

DDL = """
select pg_advisory_xact_lock(hashtext('civicflow.quality_schema'));
create schema if not exists quality;
create table if not exists quality.check_results (
    run_id text not null,
    dataset text not null,
    rule text not null,
    check_name text not null,
    published_table text not null,
    passed boolean not null,
    blocking boolean not null,
    waived_reason text,
    failing_count bigint not null,
    failing_by_field jsonb not null default '{}',
    errors jsonb not null default '[]',
    data_docs text,
    checked_at timestamptz not null,
    primary key (run_id, dataset, rule)
);
create index if not exists check_results_dataset_checked_at on quality.check_results (dataset, checked_at);
create table if not exists quality.redaction_counts (
    run_id text not null,
    dataset text not null,
    field text not null,
    kind text not null,
    redactions bigint not null,
    checked_at timestamptz not null,
    primary key (run_id, dataset, field, kind)
);
"""


def store_results(conn: psycopg2.extensions.connection, run_id: str, published_table: str, results: list[RuleResult],
                  redactions: dict[str, dict[str, int]], data_docs: str | None, checked_at: datetime) -> None:
    """One row per rule (and per field and kind of redaction); a retried run replaces its own rows."""
    with conn.cursor() as cur:
        cur.execute(DDL)
        for r in results:
            cur.execute(
                """
                insert into quality.check_results (run_id, dataset, rule, check_name, published_table, passed,
                    blocking, waived_reason, failing_count, failing_by_field, errors, data_docs, checked_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (run_id, dataset, rule) do update set
                    passed = excluded.passed, failing_count = excluded.failing_count,
                    failing_by_field = excluded.failing_by_field, errors = excluded.errors,
                    waived_reason = excluded.waived_reason, data_docs = excluded.data_docs,
                    checked_at = excluded.checked_at
                """,
                (run_id, r.dataset, r.rule, r.check_name, published_table, r.passed, r.blocking, r.waived_reason,
                 r.failing_count, json.dumps(r.failing_by_field), json.dumps(r.errors), data_docs, checked_at),
            )
        dataset = results[0].dataset if results else ""
        for field, kinds in redactions.items():
            for kind, count in kinds.items():
                cur.execute(
                    """
                    insert into quality.redaction_counts (run_id, dataset, field, kind, redactions, checked_at)
                    values (%s, %s, %s, %s, %s, %s)
                    on conflict (run_id, dataset, field, kind) do update set redactions = excluded.redactions
                    """,
                    (run_id, dataset, field, kind, count, checked_at),
                )
    conn.commit()
