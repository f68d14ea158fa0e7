"""How many values the publish model redacted, per free-text field and kind, read from the markers it left."""

from __future__ import annotations

import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.checks.config import PII_KINDS, Dataset

# What each kind leaves in the published text; addresses are generalized to the block, not redacted.
MARKERS = {kind: f"[redacted-{kind}]" for kind in PII_KINDS if kind != "address"} | {"address": " BLOCK OF "}


def redaction_counts(conn: psycopg2.extensions.connection, dataset: Dataset,
                     columns: dict[str, str]) -> tuple[dict[str, dict[str, int]], int | None]:
    """Counts by field and kind, and the sum of the RedactionCount column (None without one) to compare."""
    fields = [f for f in dataset.free_text_fields if f in columns]
    if not fields:
        return {}, None
    has_total = "RedactionCount" in columns
    terms = []
    for field in fields:
        for marker in MARKERS.values():
            text = sql.SQL("coalesce({}, '')").format(sql.Identifier(field))
            terms.append(sql.SQL("coalesce(sum((length({t}) - length(replace({t}, {m}, ''))) / {n}), 0)").format(
                t=text, m=sql.Literal(marker), n=sql.Literal(len(marker))))
    total = sql.SQL('coalesce(sum("RedactionCount"), 0)') if has_total else sql.SQL("null")
    # Only rows the model changed carry markers it added: the filter skips the rest of a large table.
    where = sql.SQL('where "RedactionCount" > 0') if has_total else sql.SQL("")
    query = sql.SQL("select {terms}, {total} from {table} {where}").format(
        terms=sql.SQL(", ").join(terms), total=total,
        table=sql.Identifier(dataset.schema, dataset.table), where=where)
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    conn.commit()
    counts: dict[str, dict[str, int]] = {}
    values = iter(row[:-1])
    for field in fields:
        counts[field] = {kind: int(next(values)) for kind in MARKERS}
    return counts, (int(row[-1]) if has_total else None)
