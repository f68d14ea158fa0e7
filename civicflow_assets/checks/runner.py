"""One dataset's checks end to end: read the table's shape, run the GX suites, fold per rule, store the summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from civicflow_assets.checks.config import CheckSettings, Dataset
from civicflow_assets.checks.redactions import redaction_counts
from civicflow_assets.checks.results_store import store_results
from civicflow_assets.checks.rules import PublishedTable, applicable_rules
from civicflow_assets.checks.summary import RuleResult, summarize
from civicflow_assets.checks.validation import ExpectationOutcome, validate_dataset
from civicflow_assets.database import connect


@dataclass(frozen=True)
class DatasetCheckReport:
    dataset: Dataset
    results: list[RuleResult]
    data_docs: Path | None
    redactions: dict[str, dict[str, int]] = field(default_factory=dict)
    redaction_total: int | None = None
    seconds: float = 0.0

    @property
    def blocking_failures(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocking and not r.passed]


def published_table(url: str, dataset: Dataset) -> PublishedTable:
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("select column_name, data_type from information_schema.columns"
                    " where table_schema = %s and table_name = %s order by ordinal_position",
                    (dataset.schema, dataset.table))
        columns = dict(cur.fetchall())
    return PublishedTable(dataset.schema, dataset.table, columns)


def check_dataset(url: str, dataset: Dataset, settings: CheckSettings, docs_root: Path,
                  run_id: str) -> DatasetCheckReport:
    started = time.perf_counter()
    checked_at = datetime.now(UTC)
    rules = applicable_rules(dataset, settings)
    table = published_table(url, dataset)
    if not table.columns:
        # Nothing to prove anything on: every rule fails, so that nothing downstream publishes.
        missing = [ExpectationOutcome(rule, dataset.published_table, "table_exists", False, 1,
                                      error=f"{dataset.published_table} does not exist") for rule in rules]
        results = summarize(dataset, settings, rules, missing)
        docs, redactions, total = None, {}, None
    else:
        to_run = [r for r in rules if r not in dataset.waivers]
        validation = validate_dataset(url, dataset, settings, table, to_run, docs_root, run_id)
        results = summarize(dataset, settings, rules, validation.outcomes)
        docs = validation.data_docs
        with connect(url) as conn:
            redactions, total = redaction_counts(conn, dataset, table.columns)
    with connect(url) as conn:
        store_results(conn, run_id, dataset.published_table, results, redactions, str(docs) if docs else None,
                      checked_at)
    return DatasetCheckReport(dataset, results, docs, redactions, total, time.perf_counter() - started)
