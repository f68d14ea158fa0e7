"""The Dagster side: one multi-asset check per published dataset, one check (spec) per rule.

Rules marked blocking in settings.yaml (every PII rule) are blocking checks: when one fails, Dagster skips
every asset downstream of the published table in that run, so the publication step never sees the data.
"""

# No `from __future__ import annotations` here: Dagster checks the context parameter's annotation at runtime.
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from civicflow_assets.checks.config import CheckSettings, Dataset, load_check_settings, load_datasets
from civicflow_assets.checks.rules import CHECK_NAMES, applicable_rules
from civicflow_assets.checks.runner import DatasetCheckReport, check_dataset
from civicflow_assets.checks.summary import RuleResult
from civicflow_assets.database import PostgresResource
from civicflow_assets.settings import load_settings


def _check_result(report: DatasetCheckReport, result: RuleResult, key: AssetKey, run_id: str) -> AssetCheckResult:
    metadata = {
        "dataset": report.dataset.name,
        "published_table": report.dataset.published_table,
        "rules": ", ".join(result.rule_ids),
        "rule": result.title,
        "failing_count": result.failing_count,
        "failing_by_field": MetadataValue.json(result.failing_by_field),
        "summary": result.describe(),
        "run_id": run_id,
    }
    if result.waived_reason:
        metadata["waived"] = result.waived_reason
    if result.errors:
        metadata["errors"] = MetadataValue.json(result.errors)
    if report.data_docs:
        metadata["data_docs"] = MetadataValue.path(str(report.data_docs))
    if result.rule == "PII1" and report.redactions:
        metadata["redactions"] = MetadataValue.json(report.redactions)
        metadata["redaction_total"] = sum(sum(kinds.values()) for kinds in report.redactions.values())
        if report.redaction_total is not None:
            metadata["redaction_count_column_total"] = report.redaction_total
    return AssetCheckResult(
        asset_key=key,
        check_name=result.check_name,
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR if result.blocking else AssetCheckSeverity.WARN,
        metadata=metadata,
        description=result.describe(),
    )


def dataset_checks(dataset: Dataset, settings: CheckSettings, docs_root: Path) -> AssetChecksDefinition:
    key = AssetKey(dataset.asset_key_path)
    rules = applicable_rules(dataset, settings)
    specs = [
        AssetCheckSpec(
            name=CHECK_NAMES[rule],
            asset=key,
            blocking=settings.rules[rule].blocking,
            description=f"{rule}: {settings.rules[rule].title}"
                        + (f" (waived: {dataset.waivers[rule]})" if rule in dataset.waivers else ""),
        )
        for rule in rules
    ]

    @multi_asset_check(
        specs=specs,
        name=f"{dataset.name}_open_data_rules",
        description=f"Open-data and privacy rules on {dataset.published_table}, as a GX suite ({', '.join(rules)}).",
    )
    def _checks(context: AssetCheckExecutionContext, postgres: PostgresResource) -> Iterator[AssetCheckResult]:
        report = check_dataset(postgres.url, dataset, settings, docs_root, context.run.run_id)
        for failure in report.blocking_failures:
            context.log.error(failure.describe())
        context.log.info(f"{dataset.name}: {len(report.results)} rules checked in {report.seconds:.1f}s;"
                         f" Data Docs: {report.data_docs}")
        for result in report.results:
            yield _check_result(report, result, key, context.run.run_id)

    return _checks


def build_checks(datasets: dict[str, Dataset] | None = None, settings: CheckSettings | None = None,
                 docs_root: Path | None = None) -> list[AssetChecksDefinition]:
    """One multi-asset check per dataset in checks/datasets.yaml, on its publish model's asset."""
    settings = settings or load_check_settings()
    datasets = datasets if datasets is not None else load_datasets(settings=settings)
    docs_root = docs_root or load_settings().state_dir / "data_docs"
    return [dataset_checks(dataset, settings, docs_root) for dataset in datasets.values()]
