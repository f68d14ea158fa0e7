"""Publishing a report table with the publication layer's own publisher (publish/publisher.py): metadata, DataStore,
CSV, JSON and spreadsheets, the field map, and the report pages as attachments, each sent only when it changed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from civicflow_assets.publish.catalog import Catalog
from civicflow_assets.publish.client import CkanClient
from civicflow_assets.publish.metadata import CheckResult, CheckSummary
from civicflow_assets.publish.publisher import Attachment, Publication, PublishContext, publish_dataset
from civicflow_assets.reports.config import ReportsConfig
from civicflow_assets.reports.tables import ReportFieldMap, ReportTable, dataset_spec

log = logging.getLogger(__name__)
# Fields that count requests, i.e. people (rule PII3); report_figures says so in its Unit.
COUNT_FIELDS = ("RequestsOpened", "RequestsClosed", "BacklogAtPeriodEnd")


class SmallCellLeak(RuntimeError):
    pass


def small_cell_check(table: ReportTable, rows: Sequence[dict[str, Any]], small_cell_min: int) -> CheckResult:
    """PII3 on what is about to go out: no count of requests from 1 to small_cell_min - 1. Raises when one would
    (PII5: the failure names the table, the fields and how many values, never the values)."""
    leaks: dict[str, int] = {}
    for row in rows:
        counts = {f: row.get(f) for f in COUNT_FIELDS if f in row}
        if row.get("Unit") == "requests":
            counts[f"Value ({row['Measure']})"] = row.get("Value")
        for name, value in counts.items():
            if value is not None and 0 < value < small_cell_min:
                leaks[name] = leaks.get(name, 0) + 1
    if leaks:
        found = ", ".join(f"{name} ({n})" for name, n in sorted(leaks.items()))
        raise SmallCellLeak(f"{table.table}: PII3 failed for {sum(leaks.values())} value(s) in {found}")
    return CheckResult(f"{table.table}:pii3_small_cells", True, True,
                       f"PII3: no count of requests below {small_cell_min}")


def publish_table(table: ReportTable, rows: Sequence[dict[str, Any]], config: ReportsConfig, catalog: Catalog,
                  client: CkanClient, warehouse_url: str, datastore_url: str | None, run_id: str,
                  attachments: Sequence[Attachment] = (), logger: logging.Logger = log) -> Publication:
    check = small_cell_check(table, rows, config.small_cell_min)
    return publish_dataset(dataset_spec(table, config, catalog), PublishContext(
        warehouse_url=warehouse_url, client=client, organization=catalog.organization, datastore_url=datastore_url,
        run_id=run_id, checks=CheckSummary((check,)), mapper=ReportFieldMap(table), attachments=tuple(attachments),
        logger=logger))


def html(role: str, name: str, filename: str, content: str, description: str) -> Attachment:
    return Attachment(role, name, filename, content.encode(), "HTML", "text/html", description)


def pdf(role: str, name: str, filename: str, content: bytes, description: str) -> Attachment:
    return Attachment(role, name, filename, content, "PDF", "application/pdf", description)
