"""Running a dataset's GX suites against the published table, and building its Data Docs.

An ephemeral GX context per run: the connection string lives only in memory, never in a great_expectations.yml.
Validation results are kept as JSON beside the Data Docs site (one site per dataset, so checks of several
datasets running at once never write the same index), pruned to the last `data_docs_history` runs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from civicflow_assets.checks.config import CheckSettings, Dataset
from civicflow_assets.checks.rules import PublishedTable, expectations_for

# Counts without values: no partial list of unexpected values (the by-field queries select names and counts).
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class ExpectationOutcome:
    rule: str
    field: str
    expectation: str
    success: bool
    failing: int  # values (or rows, or fields) that failed; 1 for a failed column-level expectation
    failing_fields: dict[str, int] = field(default_factory=dict)  # from by-field queries: failing values per field
    error: str | None = None


@dataclass(frozen=True)
class DatasetValidation:
    outcomes: list[ExpectationOutcome]
    data_docs: Path
    seconds: float


def sqlalchemy_url(url: str) -> str:
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3, which is not installed: name psycopg2.
    return url.replace("postgresql://", "postgresql+psycopg2://", 1) if url.startswith("postgresql://") else url


def _context(site_dir: Path, results_dir: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results_dir)},
    }
    config.data_docs_sites = {
        "civicflow": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return gx.get_context(project_config=config, mode="ephemeral")


def _without_values(message: str) -> str:
    """The first line of an error, quoted parts masked: a database error can quote the value it choked on."""
    first = (message.splitlines() or [""])[0]
    return re.sub(r'"[^"]*"|\'[^\']*\'', "<…>", first)[:300]


def _outcomes(result: Any) -> list[ExpectationOutcome]:
    """One outcome per rule the expectation answers for (a by-field query can answer for several)."""
    config = result.expectation_config
    meta = config.meta or {}
    rules, field_name = meta.get("rules") or [meta.get("rule", "?")], meta.get("field", "?")
    info = result.exception_info or {}
    # Metric errors are keyed by metric id: any of them means the expectation could not be evaluated.
    errors = [info] if info.get("raised_exception") else [v for v in info.values()
                                                          if isinstance(v, dict) and v.get("raised_exception")]
    if errors:
        message = _without_values(str(errors[0].get("exception_message") or "error"))
        return [ExpectationOutcome(rule, field_name, config.type, False, 1, error=message) for rule in rules]
    details = result.result or {}
    extra = details.get("details") or {}
    if "failing_by_rule" in extra or len(rules) > 1:
        by_rule = extra.get("failing_by_rule") or {}
        return [ExpectationOutcome(rule, field_name, config.type, not by_rule.get(rule),
                                   sum((by_rule.get(rule) or {}).values()), dict(by_rule.get(rule) or {}))
                for rule in rules]
    by_field = extra.get("failing_by_field")
    if by_field is not None:
        return [ExpectationOutcome(rules[0], field_name, config.type, bool(result.success), sum(by_field.values()),
                                   dict(by_field))]
    failing = int(details.get("unexpected_count") or 0) if "unexpected_count" in details else int(not result.success)
    return [ExpectationOutcome(rules[0], field_name, config.type, bool(result.success), failing)]


def _prune(context: Any, suite_names: list[str], keep: int) -> None:
    store = context.validation_results_store
    for suite in suite_names:
        keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite]
        keys.sort(key=lambda k: k.run_id.run_time or datetime.min.replace(tzinfo=UTC))
        for key in keys[:-keep] if keep > 0 else keys:
            store.remove_key(key)


def validate_dataset(url: str, dataset: Dataset, settings: CheckSettings, table: PublishedTable,
                     rules: list[str], docs_root: Path, run_name: str) -> DatasetValidation:
    import geoalchemy2  # noqa: F401  (registers PostGIS types, so GX can reflect geometry columns)
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    started = datetime.now(UTC)
    site_dir = docs_root / dataset.name
    context = _context(site_dir, docs_root / ".results" / dataset.name)
    source = context.data_sources.add_postgres("warehouse", connection_string=sqlalchemy_url(url))
    asset = source.add_table_asset(dataset.name, table_name=table.name, schema_name=table.schema)
    batch = asset.add_batch_definition_whole_table("published")
    run_id = RunIdentifier(run_name=run_name, run_time=started)

    name = f"{dataset.name}.open_data_rules"
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations_for(
        dataset, table, settings, rules)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = definition.run(result_format=RESULT_FORMAT, run_id=run_id)
    outcomes = [o for r in result.results for o in _outcomes(r)]

    _prune(context, [name], settings.data_docs_history)
    ours = [k for k in context.validation_results_store.list_keys() if k.run_id.run_name == run_name]
    context.build_data_docs(resource_identifiers=ours)
    return DatasetValidation(outcomes, site_dir / "index.html", (datetime.now(UTC) - started).total_seconds())
