"""The warehouse tables the reports publish (schema `reports`), each declared once with its fields' descriptions and
sources: the declaration makes the table, its CKAN dataset and its field map (rule P2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions
from psycopg2 import sql
from psycopg2.extras import execute_values

from civicflow_assets.publish.catalog import Catalog, DatasetSpec
from civicflow_assets.publish.fieldmap import FieldMapper, FieldSource
from civicflow_assets.publish.table import ROW_KEY, PublishedTable
from civicflow_assets.reports.config import ReportsConfig

SCHEMA = "reports"
SOURCE_SYSTEM = "CivicFlow transparency reports (civicflow_assets/reports)"
WAIVER_U2 = ("Report figures have no life of their own: every row is recomputed from the marts on each run; "
             "FiscalYear says which period a row describes.")


@dataclass(frozen=True)
class Field:
    name: str
    pg_type: str
    description: str
    source: str  # the warehouse relations it is computed from
    transformation: str = "copied unchanged"


@dataclass(frozen=True)
class ReportTable:
    output: str  # the reports.yaml dataset it is published as
    name: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    temporal_field: str | None = None

    @property
    def table(self) -> str:
        return f"{SCHEMA}.{self.name}"


def _f(name: str, pg_type: str, description: str, source: str, transformation: str = "copied unchanged") -> Field:
    return Field(name, pg_type, description, source, transformation)


FCT = "marts.fct_service_requests"
LEVELS = "marts.service_levels"
BUDGET = "marts.budget_variance"
MEASURES = {
    "RequestsOpened": _f("RequestsOpened", "integer", "Requests created in the period.", FCT,
                         "count by CreatedMonth"),
    "RequestsClosed": _f("RequestsClosed", "integer", "Requests that left the backlog in the period.", FCT,
                         "count by ClosedMonth"),
    "MedianHoursToClose": _f("MedianHoursToClose", "double precision",
                             "Median hours to close of the requests closed in the period.", FCT,
                             "percentile_cont(0.5) of HoursToClose by ClosedMonth"),
    "P90HoursToClose": _f("P90HoursToClose", "double precision",
                          "90th percentile hours to close of the requests closed in the period.", FCT,
                          "percentile_cont(0.9) of HoursToClose by ClosedMonth"),
    "OnTimePct": _f("OnTimePct", "double precision",
                    "Percentage of the requests closed in the period that met their type's service level.", FCT,
                    "100 * count(OnTime) / count of known outcomes, by ClosedMonth"),
    "BacklogAtPeriodEnd": _f("BacklogAtPeriodEnd", "integer",
                             "Requests open at the end of the period's last month with data.", FCT,
                             "created by then and not closed by then"),
}
PERIOD_FIELDS = (
    _f("FiscalYear", "integer", "Fiscal year, named by the calendar year it ends in (FY2024 = July 2023 - "
       "June 2024).", FCT, "the reporting period"),
    _f("DataThrough", "date", "First day of the last month of the period that has data.", LEVELS, "max(Month)"),
    _f("PeriodComplete", "boolean", "The period has data for all of its months.", LEVELS),
)
SUPPRESSED = _f("SmallCellSuppressed", "boolean",
                "Rule PII3: a count of requests below the small-cell threshold, and the figures measured on those "
                "requests, are withheld (null).", FCT, "count < small_cell_min (checks/settings.yaml)")

REPORT_FIGURES = ReportTable("report", "report_figures", ("FiscalYear", "Section", "Subject", "Measure"), (
    PERIOD_FIELDS[0],
    _f("Section", "text", "The part of the report: service_levels, trend, tract, equity, budget.", FCT),
    _f("Subject", "text", "What the figure is about: empty for the whole city, a month (YYYY-MM), a tract GEOID, "
       "an income quintile, a request type or a department.", FCT),
    _f("Measure", "text", "The measure, in CamelCase (RequestsOpened, MedianDelayRatio, Budgeted ...).", FCT),
    _f("Value", "double precision", "The figure; null where it is withheld (PII3) or not published.",
       f"{FCT}, {LEVELS}, marts.demographic_equity, {BUDGET}", "as the report computes it"),
    _f("Unit", "text", "The unit of Value: requests, hours, percent, ratio, dollars, per_1000_residents.", FCT),
), temporal_field="FiscalYear")

DEPARTMENT_SCORECARDS = ReportTable("department_scorecards", "department_scorecards", ("FiscalYear", "Department"), (
    *PERIOD_FIELDS,
    _f("Department", "text", "The department (budget lines and owner of 311 request types).",
       f"{BUDGET}, {FCT}", "Department, OwningDepartment"),
    _f("RequestTypes", "text", "The 311 request types the department owns (seed request_types).", FCT,
       "distinct RequestType by OwningDepartment"),
    *MEASURES.values(),
    SUPPRESSED,
    _f("Budgeted", "numeric", "Budgeted expenses in the fiscal year.", BUDGET, "sum(Budgeted), expense lines"),
    _f("Actual", "numeric", "Actual expenses in the fiscal year, where published.", BUDGET,
       "sum(Actual), expense lines"),
    _f("Variance", "numeric", "Actual - Budgeted over the lines that have both.", BUDGET, "sum(Variance)"),
    _f("VariancePct", "numeric", "100 * Variance / the budget of the lines that have both.", BUDGET),
    _f("VarianceStatus", "text", "favorable (at or under budget), unfavorable, or why there is no variance.",
       BUDGET, "sign of Variance"),
    _f("BudgetedChangePct", "numeric", "Change of the budget against the previous fiscal year, percent.", BUDGET,
       "sum(BudgetedYoYChange) / previous budget"),
), temporal_field="FiscalYear")

DISTRICT_SCORECARDS = ReportTable("district_scorecards", "district_scorecards", ("FiscalYear", "CouncilDistrict"), (
    *PERIOD_FIELDS,
    _f("CouncilDistrict", "text", "Council district of the requests (point in polygon).", FCT),
    *MEASURES.values(),
    SUPPRESSED,
    _f("CityMedianHoursToClose", "double precision", "The citywide median, for comparison.", FCT,
       "percentile_cont(0.5) of HoursToClose by ClosedMonth, all requests"),
    _f("CityOnTimePct", "double precision", "The citywide on-time percentage, for comparison.", FCT),
), temporal_field="FiscalYear")

INDEX_SOURCE = "CKAN package_show, publish.audit, quality.check_results, reports/index.yaml"
TRANSPARENCY_INDEX = ReportTable("index", "transparency_index", ("Scope", "Dataset"), (
    _f("Scope", "text", "dataset: one published dataset; portal: the mean over them.", INDEX_SOURCE),
    _f("Dataset", "text", "The dataset's id (checks/datasets.yaml), or portal.", INDEX_SOURCE),
    _f("CkanDataset", "text", "The dataset's name on CKAN (/dataset/<name>).", INDEX_SOURCE),
    _f("Title", "text", "The dataset's title.", INDEX_SOURCE),
    _f("Score", "double precision", "Transparency index, 0-100: the sum of the criteria's points.", INDEX_SOURCE,
       "sum of the points columns"),
    *(_f(name, "double precision", f"Points for {label} (0 to its weight in the methodology).", INDEX_SOURCE,
         "weight * share met")
      for name, label in (("MachineReadable", "machine-readable (F1)"), ("OpenFormat", "open format (F3)"),
                          ("OpenLicense", "open license"), ("BulkDownload", "bulk download"),
                          ("ApiAccess", "API access (F2)"), ("Freshness", "freshness against its target (U1)"),
                          ("Owner", "the owner named (P1)"), ("FieldMap", "a field map (P2)"),
                          ("ConversionDoc", "the conversion documented (P4)"),
                          ("CheckPassRate", "the share of quality checks passed"))),
    _f("LastPublished", "timestamp with time zone", "The dataset's latest publication.", "publish.audit",
       "max(published_at)"),
    _f("FreshnessTargetHours", "double precision", "How old the latest publication may be (by update frequency).",
       "reports/index.yaml"),
    _f("ChecksPassed", "integer", "Quality checks passed in the latest check run.", "quality.check_results"),
    _f("ChecksRun", "integer", "Quality checks in the latest check run.", "quality.check_results"),
    _f("MethodVersion", "integer", "The version of the methodology (index.yaml).", "reports/index.yaml"),
))
# The criteria columns of TRANSPARENCY_INDEX, in index.CRITERIA order.
INDEX_COLUMNS = ("MachineReadable", "OpenFormat", "OpenLicense", "BulkDownload", "ApiAccess", "Freshness", "Owner",
                 "FieldMap", "ConversionDoc", "CheckPassRate")


def write_table(conn: psycopg2.extensions.connection, table: ReportTable, rows: Sequence[dict[str, Any]]) -> int:
    """Replace the table in one transaction: a reader (the publication) sees the old rows or the new ones."""
    names = [f.name for f in table.fields]
    unknown = {key for row in rows for key in row} - set(names)
    if unknown:
        raise ValueError(f"{table.table}: no fields {sorted(unknown)}")
    relation = sql.Identifier(SCHEMA, table.name)
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(f.pg_type))
                                 for f in table.fields)
    key = sql.SQL(", ").join(sql.Identifier(k) for k in table.key)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
        cur.execute(sql.SQL("drop table if exists {}").format(relation))
        cur.execute(sql.SQL("create table {} ({}, unique ({}))").format(relation, columns, key))
        if rows:
            insert = sql.SQL("insert into {} ({}) values %s").format(
                relation, sql.SQL(", ").join(sql.Identifier(n) for n in names))
            execute_values(cur, insert.as_string(cur), [tuple(row.get(n) for n in names) for row in rows])
    conn.commit()
    return len(rows)


class ReportFieldMap(FieldMapper):
    """The field map of a report table, from its declaration (it is made in Python, not by a dbt model)."""

    def __init__(self, table: ReportTable):
        super().__init__(manifest=None)  # type: ignore[arg-type]  # nothing is traced through dbt
        self.report_table = table

    def field_map(self, table: PublishedTable) -> list[FieldSource]:
        declared = {f.name: f for f in self.report_table.fields}
        entries = []
        for column in table.columns:
            entry = FieldSource(column.name, column.datastore_type)
            if column.name == ROW_KEY and table.has_row_key:
                entry.source_systems.append("CivicFlow publication")
                entry.transformations.append("the key fields " + ", ".join(table.spec.key) + " joined with |")
            else:
                field = declared[column.name]
                entry.description = field.description
                entry.source_systems.append(SOURCE_SYSTEM)
                entry.source_tables.append(field.source)
                entry.source_fields.append(column.name)
                entry.transformations.append(field.transformation)
            entries.append(entry)
        return entries


def dataset_spec(table: ReportTable, config: ReportsConfig, catalog: Catalog) -> DatasetSpec:
    output = config.output(table.output)
    defaults = catalog.defaults
    return DatasetSpec(
        name=f"reports_{table.output}", table=table.table, ckan_name=output.ckan_name, title=output.title,
        description=output.description, owner=config.owner, update_frequency="daily", key=table.key,
        temporal_field=table.temporal_field, grain="aggregate", source_model=None, tags=output.tags,
        waivers={"U2": WAIVER_U2}, spreadsheets=True,
        license_id=defaults.get("license_id", "cc-zero"), license_url=defaults.get("license_url", ""),
        contact_name=defaults.get("contact_name", ""), contact_email=defaults.get("contact_email", ""),
        spatial=defaults.get("spatial", ""), language=defaults.get("language", "en-US"))
