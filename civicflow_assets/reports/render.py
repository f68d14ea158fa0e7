"""A report as a self-contained web page (charts inline as SVG, no file or script from elsewhere), as a PDF
(matplotlib's PdfPages: the same charts, and the tables), and each chart or map as an embeddable page of its own.
The tables are defined once here and drawn by both the template and the PDF."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from civicflow_assets.reports.charts import Chart, style
from civicflow_assets.reports.report import Report

TEMPLATES = Path(__file__).with_name("templates")
WITHHELD = "withheld"  # rule PII3
NONE = "-"
PAGE = (8.5, 11)
SERVICE_LEVEL_CHARTS = ("requests-by-month", "time-to-close-by-month", "on-time-by-month", "backlog-by-month")
MAPS = ("requests-per-1000-map", "median-delay-map")


# -- numbers as people read them


def count(value: float | None, missing: str = WITHHELD) -> str:
    return f"{value:,.0f}" if value is not None else missing


def hours(value: float | None, missing: str = WITHHELD) -> str:
    if value is None:
        return missing
    return f"{value:,.1f} h ({value / 24:,.1f} days)"


def pct(value: float | None) -> str:
    return f"{value:.1f}%" if value is not None else "n/a"


def money(value: float | None) -> str:
    return f"${value:,.0f}" if value is not None else "n/a"


def ratio(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "n/a"


# -- tables


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # favorable, unfavorable, stale ...
    href: str = ""


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    header: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""


def _cells(*values: str | Cell) -> tuple[Cell, ...]:
    return tuple(v if isinstance(v, Cell) else Cell(v) for v in values)


def _service_cells(fields: dict[str, Any]) -> tuple[str, ...]:
    # A missing figure is withheld only where the row says so; else there is nothing to measure (no requests).
    missing = WITHHELD if fields.get("SmallCellSuppressed") else NONE
    return (count(fields.get("RequestsOpened"), missing), count(fields.get("RequestsClosed"), missing),
            hours(fields.get("MedianHoursToClose"), missing), hours(fields.get("P90HoursToClose"), missing),
            pct(fields.get("OnTimePct")), count(fields.get("BacklogAtPeriodEnd"), missing))


SERVICE_HEADER = ("Opened", "Closed", "Median time to close", "90th percentile", "On time", "Backlog at end")


def tables(report: Report) -> dict[str, Table]:
    period = report.period
    withheld = f"'{WITHHELD}': fewer than {report.small_cell_min} requests (rule PII3)."
    by_type = Table("by-request-type", "By request type", ("Request type", *SERVICE_HEADER),
                    [_cells(name, *_service_cells(fields)) for name, fields in report.by_type], withheld)
    budget = Table(
        "budget-lines", f"Budget and actual, {period.label}",
        ("Department", "Line", "Budgeted", "Actual", "Variance", "Variance %", "Status", "Budget vs previous year"),
        [_cells(line.department, line.line_type, money(line.budgeted), money(line.actual), money(line.variance),
                pct(line.variance_pct), Cell(line.status, line.status.replace(" ", "-")),
                pct(line.budgeted_change_pct)) for line in report.budget],
        f"{report.city}'s budget and ledger extracts; a variance needs a budget and an actual for the same lines. "
        "Favorable: an expense at or under budget, revenue at or over.")
    departments = Table(
        "department-scorecards", f"Department scorecards, {period.label}",
        ("Department", "Request types", *SERVICE_HEADER, "Budgeted", "Actual", "Variance", "Status"),
        [_cells(r["Department"], r.get("RequestTypes") or "", *_service_cells(r), money(r.get("Budgeted")),
                money(r.get("Actual")), money(r.get("Variance")),
                Cell(r["VarianceStatus"], r["VarianceStatus"].replace(" ", "-"))) for r in report.departments],
        withheld)
    districts = Table(
        "district-scorecards", f"Council district scorecards, {period.label}", ("District", *SERVICE_HEADER),
        [_cells(f"District {r['CouncilDistrict']}", *_service_cells(r)) for r in report.districts],
        f"Citywide: median {hours(report.city_fields['MedianHoursToClose'])}, on time "
        f"{pct(report.city_fields['OnTimePct'])}. {withheld}")
    quality = Table(
        "data-quality", "Published datasets: transparency index, checks and freshness",
        ("Dataset", "Index (0-100)", "Checks passed", "Last published", "Freshness target", "Fresh"),
        [_cells(Cell(r["Title"], href=report.links.get(r["Dataset"], "")), f"{r['Score']:.1f}",
                f"{r['ChecksPassed']} of {r['ChecksRun']}",
                r["LastPublished"].strftime("%Y-%m-%d") if r["LastPublished"] else "never",
                f"{r['FreshnessTargetHours']:,.0f} h",
                Cell("yes", "favorable") if r["Freshness"] > 0 else Cell("late", "unfavorable"))
         for r in report.quality],
        "Index criteria and weights: the methodology resource of the transparency index dataset.")
    return {t.id: t for t in (by_type, budget, departments, districts, quality)}


# -- web pages


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(count=count, hours=hours, pct=pct, money=money, ratio=ratio)
    return environment


def _inline(chart: Chart) -> dict[str, Any]:
    # The SVG is matplotlib's own output, not text from the data: safe to put in the page as it is.
    return {"id": chart.id, "title": chart.title, "caption": chart.caption, "kind": chart.kind,
            "svg": Markup(chart.svg)}


def render_html(report: Report) -> str:
    charts = {c.id: _inline(c) for c in report.charts}
    return _environment().get_template("report.html.j2").render(
        report=report, period=report.period, kpis=report.city_fields, charts=charts, tables=tables(report),
        service_level_charts=SERVICE_LEVEL_CHARTS, maps=MAPS)


def render_view(report: Report, chart: Chart) -> str:
    return _environment().get_template("view.html.j2").render(report=report, chart=_inline(chart))


# -- PDF


def _charts_page(report: Report, ids: Sequence[str], title: str) -> Figure:
    figure = Figure(figsize=PAGE, layout="constrained")
    figure.suptitle(f"{report.title}: {title}", fontsize=11, fontweight="bold")
    for ax, chart_id in zip(figure.subplots(len(ids), 1), ids, strict=True):
        report.chart(chart_id).draw(ax)
    return figure


def _clip(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _table_page(report: Report, table: Table, rows_per_page: int = 40) -> list[Figure]:
    pages = []
    for start in range(0, max(len(table.rows), 1), rows_per_page):
        figure = Figure(figsize=PAGE[::-1])  # landscape: the scorecards are wide
        figure.suptitle(f"{report.title}: {table.title}", fontsize=11, fontweight="bold")
        ax = figure.add_axes((0.03, 0.08, 0.94, 0.84))
        ax.set_axis_off()
        chunk = [[_clip(c.text) for c in row] for row in table.rows[start:start + rows_per_page]]
        if chunk:
            # Columns as wide as their longest text, scaled to the page: matplotlib's tables do not wrap.
            longest = [max(len(text) for text in column) + 2 for column in zip(table.header, *chunk, strict=True)]
            drawn = ax.table(cellText=chunk, colLabels=list(table.header), loc="upper center", cellLoc="left",
                             colWidths=[n / sum(longest) for n in longest])
            drawn.auto_set_font_size(False)
            drawn.set_fontsize(6.5)
        else:
            ax.text(0.5, 0.9, "No rows for this period.", ha="center")
        if table.note:
            figure.text(0.03, 0.03, table.note, fontsize=7, wrap=True)
        pages.append(figure)
    return pages


def _summary_page(report: Report) -> Figure:
    kpis = report.city_fields
    equity = report.equity
    portal = f"{report.portal['Score']:.1f} of 100" if report.portal else "not computed yet"
    lines = [
        (report.title, 16, "bold"),
        (report.period.months, 11, "normal"),
        ("", 8, "normal"),
        ("311 service levels", 12, "bold"),
        (f"Requests opened: {count(kpis['RequestsOpened'])}    closed: {count(kpis['RequestsClosed'])}", 10,
         "normal"),
        (f"Median time to close: {hours(kpis['MedianHoursToClose'])}", 10, "normal"),
        (f"90th percentile time to close: {hours(kpis['P90HoursToClose'])}", 10, "normal"),
        (f"Closed on time: {pct(kpis['OnTimePct'])}    backlog at the end: {count(kpis['BacklogAtPeriodEnd'])}", 10,
         "normal"),
        ("", 8, "normal"),
        ("Equity", 12, "bold"),
        (f"Equity gap index (lowest- over highest-income quintile's median delay): {ratio(equity.gap_index)} "
         f"in {report.period.label}, {ratio(report.equity_all.gap_index)} over all years", 10, "normal"),
        ("", 8, "normal"),
        ("Open data", 12, "bold"),
        (f"Transparency index of the portal: {portal}", 10, "normal"),
        ("", 8, "normal"),
        ("Every figure of this report is also published as data (CSV, JSON, the DataStore API) in the "
         "Transparency Report dataset.", 8, "normal"),
    ]
    figure = Figure(figsize=PAGE)
    y = 0.94
    for text, size, weight in lines:
        figure.text(0.08, y, text, fontsize=size, fontweight=weight, wrap=True)
        y -= 0.012 + size / 300
    return figure


def render_pdf(report: Report) -> bytes:
    buffer = io.BytesIO()
    report_tables = tables(report)
    # No creation date: the same figures give the same bytes, and an unchanged report is not uploaded again.
    metadata = {"Title": report.title, "Author": report.city, "Subject": "Transparency report",
                "CreationDate": None, "ModDate": None}
    with style(), PdfPages(buffer, metadata=metadata) as pdf:
        pages = [
            _summary_page(report),
            _charts_page(report, SERVICE_LEVEL_CHARTS, "service levels by month"),
            _charts_page(report, MAPS, "maps by census tract"),
            _charts_page(report, ("delay-by-income-quintile", "budget-by-department"), "equity and budget"),
            *(page for name in ("by-request-type", "budget-lines", "department-scorecards", "district-scorecards",
                                "data-quality") for page in _table_page(report, report_tables[name])),
        ]
        for page in pages:
            pdf.savefig(page)
    return buffer.getvalue()
