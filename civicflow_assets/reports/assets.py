"""The report assets (group "reports"), after the marts and the publications: reports/transparency_index,
reports/scorecards and reports/transparency_report, each writing its tables in the warehouse and publishing them to
CKAN. Each runs again on its own once an input was materialized since it last ran (declarative automation)."""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from civicflow_assets.database import PostgresResource
from civicflow_assets.publish.catalog import Catalog
from civicflow_assets.publish.publisher import Attachment, Publication
from civicflow_assets.publish.resources import CkanResource
from civicflow_assets.reports.config import ReportsConfig
from civicflow_assets.reports.data import reporting_periods
from civicflow_assets.reports.index import Method, gather_evidence, index_rows, portal
from civicflow_assets.reports.publishing import SmallCellLeak, html, pdf, publish_table
from civicflow_assets.reports.scorecards import build_scorecards
from civicflow_assets.reports.tables import (
    DEPARTMENT_SCORECARDS,
    DISTRICT_SCORECARDS,
    REPORT_FIGURES,
    TRANSPARENCY_INDEX,
    ReportTable,
    write_table,
)

if TYPE_CHECKING:
    from civicflow_assets.reports.report import Report

GROUP = "reports"
INDEX_KEY = AssetKey([GROUP, "transparency_index"])
SCORECARDS_KEY = AssetKey([GROUP, "scorecards"])
REPORT_KEY = AssetKey([GROUP, "transparency_report"])
MARTS = {name: AssetKey(["marts", name]) for name in
         ("fct_service_requests", "service_levels", "demographic_equity", "budget_variance")}
# Dagster's eager condition (run once any input was materialized since, none of them being built), also when an
# input was never materialized: a dataset held back by a failed check has no publication yet, and the index is
# what reports it.
REFRESH = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())


def _publish(context: AssetExecutionContext, table: ReportTable, rows: list[dict], config: ReportsConfig,
             catalog: Catalog, postgres: PostgresResource, ckan: CkanResource,
             attachments: list[Attachment] | None = None) -> Publication:
    with postgres.connection() as conn:
        write_table(conn, table, rows)
    with ckan.client() as client:
        try:
            publication = publish_table(table, rows, config, catalog, client, postgres.url, ckan.datastore_url(),
                                        context.run.run_id, attachments or [], context.log)
        except SmallCellLeak as error:
            raise Failure(description=str(error)) from error
    context.log.info(f"{table.table}: {len(rows)} rows; sent {publication.metadata()['resources_sent']}")
    return publication


def _links(client_url: str, config: ReportsConfig, catalog: Catalog) -> dict[str, str]:
    """CKAN dataset pages, by reports.yaml output and by published dataset id."""
    return {**{name: f"{client_url}/dataset/{o.ckan_name}" for name, o in config.outputs.items()},
            **{name: f"{client_url}/dataset/{s.ckan_name}" for name, s in catalog.datasets.items()}}


def index_asset(config: ReportsConfig, catalog: Catalog, method: Method, upstream: list[AssetKey]) -> AssetsDefinition:
    @asset(key=INDEX_KEY, group_name=GROUP, deps=upstream, kinds={"ckan", "postgres"}, automation_condition=REFRESH,
           description=f"The transparency index of every published dataset and of the portal (reports/index.yaml), "
                       f"from what CKAN holds, the publication audit and the quality checks; on CKAN as "
                       f"/dataset/{config.output('index').ckan_name}.")
    def transparency_index(context: AssetExecutionContext, postgres: PostgresResource,
                           ckan: CkanResource) -> MaterializeResult:
        with ckan.client() as client, postgres.connection() as conn:
            scores = portal(gather_evidence(client, conn, catalog), method, datetime.now(UTC))
        for score in scores.datasets:
            missing = score.missing(method)
            context.log.info(f"{score.evidence.dataset}: {score.total:.1f}"
                             + (f" (short of: {', '.join(missing)})" if missing else ""))
        methodology = [
            Attachment("methodology_csv", "Methodology: criteria and weights (CSV)", "transparency-index-method.csv",
                       method.methodology_csv(), "CSV", "text/csv",
                       "Every criterion of the index with its weight, the city rule it checks, the Open Data Census "
                       "question and the Open Data Toronto quality dimension it follows."),
            Attachment("methodology_yaml", "Methodology (YAML, as the pipeline reads it)", "index.yaml",
                       method.source.encode(), "YAML", "application/yaml",
                       "The weights and thresholds the index is computed with."),
        ]
        publication = _publish(context, TRANSPARENCY_INDEX, index_rows(scores, method), config, catalog, postgres,
                               ckan, methodology)
        return MaterializeResult(metadata={
            "portal_score": round(scores.total, 2),
            "scores": MetadataValue.json({s.evidence.dataset: round(s.total, 2) for s in scores.datasets}),
            "ckan_url": MetadataValue.url(publication.url),
        })

    return transparency_index


def scorecards_asset(config: ReportsConfig, catalog: Catalog, upstream: list[AssetKey]) -> AssetsDefinition:
    @asset(key=SCORECARDS_KEY, group_name=GROUP,
           deps=[MARTS["fct_service_requests"], MARTS["service_levels"], MARTS["budget_variance"], *upstream],
           kinds={"ckan", "postgres"}, automation_condition=REFRESH,
           description="Scorecards per department (service levels of the request types it owns, budget against "
                       "actual) and per council district, for each reporting period; on CKAN as "
                       f"/dataset/{config.output('department_scorecards').ckan_name} and "
                       f"/dataset/{config.output('district_scorecards').ckan_name}.")
    def scorecards(context: AssetExecutionContext, postgres: PostgresResource, ckan: CkanResource) -> MaterializeResult:
        with postgres.connection() as conn:
            periods = reporting_periods(conn, config)
            departments, districts = build_scorecards(conn, periods, config.city, config.small_cell_min)
        published = [_publish(context, DEPARTMENT_SCORECARDS, departments, config, catalog, postgres, ckan),
                     _publish(context, DISTRICT_SCORECARDS, districts, config, catalog, postgres, ckan)]
        return MaterializeResult(metadata={
            "periods": ", ".join(p.label for p in periods), "departments": len(departments),
            "districts": len(districts), "ckan_urls": ", ".join(p.url for p in published)})

    return scorecards


def _report_files(report: "Report", latest: bool) -> list[Attachment]:
    """The report as a web page and a PDF; for the latest period, each chart and map as an embeddable page."""
    # Charts and maps need matplotlib and geopandas (1.5 s to import): loaded here, not by every step process.
    from civicflow_assets.reports import render

    period = report.period
    files = [
        html(f"report_{period.slug}_html", f"Transparency report {period.label} (web page)",
             f"transparency-report-{period.slug}.html", render.render_html(report),
             f"The {report.title}, {period.months}: open it in a browser; one self-contained page."),
        pdf(f"report_{period.slug}_pdf", f"Transparency report {period.label} (PDF)",
            f"transparency-report-{period.slug}.pdf", render.render_pdf(report),
            f"The {report.title} to print or keep. Its figures are in this dataset's CSV and DataStore table."),
    ]
    if latest:
        files += [html(f"view_{chart.id}", f"{'Map' if chart.kind == 'map' else 'Chart'}: {chart.title} "
                                           f"(embeddable page, latest period)", f"{chart.id}.html",
                       render.render_view(report, chart),
                       f"{chart.caption} A page of its own, to open or embed (iframe); it follows the latest "
                       "reporting period.")
                  for chart in report.charts]
    return files


def report_asset(config: ReportsConfig, catalog: Catalog) -> AssetsDefinition:
    @asset(key=REPORT_KEY, group_name=GROUP, deps=[*MARTS.values(), INDEX_KEY, SCORECARDS_KEY],
           kinds={"ckan", "html", "pdf"}, automation_condition=REFRESH,
           description="The transparency report of each reporting period as a web page and a PDF (service levels "
                       "and trends, maps by tract, equity, budget, scorecards, data quality), its charts and maps "
                       "as embeddable pages, and every figure as data; on CKAN as "
                       f"/dataset/{config.output('report').ckan_name}.")
    def transparency_report(context: AssetExecutionContext, postgres: PostgresResource,
                            ckan: CkanResource) -> MaterializeResult:
        from civicflow_assets.reports.report import build_reports

        url, _ = ckan.connection()
        links = _links(url.rstrip("/"), config, catalog)
        with postgres.connection() as conn:
            reports = build_reports(conn, config, links)
        if not reports:
            raise Failure(description="No 311 service levels in marts.service_levels: nothing to report on")
        files = [file for i, report in enumerate(reports) for file in _report_files(report, latest=i == 0)]
        rows = [row for report in reports for row in report.figures()]
        publication = _publish(context, REPORT_FIGURES, rows, config, catalog, postgres, ckan, files)
        latest = reports[0]
        return MaterializeResult(metadata={
            "periods": ", ".join(r.period.label for r in reports),
            "requests_opened": latest.city_measures.opened,
            "median_hours_to_close": latest.city_measures.median_hours,
            "equity_gap_index": latest.equity.gap_index,
            "figures": len(rows),
            "files": len(files),
            "resources_sent": publication.metadata()["resources_sent"],
            "ckan_url": MetadataValue.url(publication.url),
        })

    return transparency_report


def reports_automation(default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds: int = 120) -> AutomationConditionSensorDefinition:
    """Evaluates the reports' automation conditions (REFRESH) and requests the runs they call for."""
    return AutomationConditionSensorDefinition(
        "reports_automation", target=AssetSelection.groups(GROUP), default_status=default_status,
        minimum_interval_seconds=minimum_interval_seconds, run_tags={"civicflow/trigger": "reports_automation"},
        description="Regenerates the transparency index, scorecards and report when their inputs change.")
