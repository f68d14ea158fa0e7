"""One period's transparency report, gathered: the marts' figures (data.py), the scorecards and the transparency
index as their assets left them in the warehouse, the charts, and every figure again as rows of report_figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg2.extensions
from psycopg2 import sql
from psycopg2.extras import RealDictCursor

from civicflow_assets.reports import charts, data
from civicflow_assets.reports.config import ReportsConfig
from civicflow_assets.reports.data import BudgetLine, Equity, Measures, MonthPoint, Period, Tract
from civicflow_assets.reports.scorecards import service_fields
from civicflow_assets.reports.tables import DEPARTMENT_SCORECARDS, DISTRICT_SCORECARDS, SCHEMA, TRANSPARENCY_INDEX


@dataclass
class Report:
    city: str
    period: Period
    small_cell_min: int
    city_measures: Measures
    by_type: list[tuple[str, dict[str, Any]]]  # request type -> its measures as scorecard fields (PII3 applied)
    trend: list[MonthPoint]
    tracts: list[Tract]
    equity: Equity
    equity_all: Equity
    budget: list[BudgetLine]
    departments: list[dict[str, Any]]
    districts: list[dict[str, Any]]
    quality: list[dict[str, Any]]  # transparency index rows of the published datasets
    portal: dict[str, Any] | None  # the portal-wide index row
    links: dict[str, str] = field(default_factory=dict)  # CKAN dataset URLs, by reports.yaml output or dataset id
    charts: list[charts.Chart] = field(default_factory=list)

    @property
    def city_fields(self) -> dict[str, Any]:
        """The citywide measures as published: a count below small_cell_min withheld (rule PII3)."""
        return service_fields(self.city_measures, self.small_cell_min)

    @property
    def title(self) -> str:
        return f"{self.city} Transparency Report, {self.period.label}"

    def chart(self, chart_id: str) -> charts.Chart:
        return next(c for c in self.charts if c.id == chart_id)

    def figures(self) -> list[dict[str, Any]]:
        """Every figure of the report as a row (rule F1: the numbers go out as data, not only as pictures)."""
        year = self.period.fiscal_year
        rows: list[dict[str, Any]] = []

        def add(section: str, subject: str, measure: str, value: float | None, unit: str) -> None:
            rows.append({"FiscalYear": year, "Section": section, "Subject": subject, "Measure": measure,
                         "Value": float(value) if value is not None else None, "Unit": unit})

        for subject, fields in [("", self.city_fields), *self.by_type]:
            for name, unit in UNITS.items():
                add("service_levels", subject, name, fields.get(name), unit)
        for point in self.trend:
            month = point.month.strftime("%Y-%m")
            for name, value, unit in (("RequestsOpened", point.opened, "requests"),
                                      ("RequestsClosed", point.closed, "requests"),
                                      ("MedianHoursToClose", point.median_hours, "hours"),
                                      ("P90HoursToClose", point.p90_hours, "hours"),
                                      ("OnTimePct", point.on_time_pct, "percent"),
                                      ("OpenBacklogAtMonthEnd", point.backlog, "requests")):
                add("trend", month, name, value, unit)
        for tract in self.tracts:
            add("tract", tract.geoid, "RequestsPer1000Residents", tract.per_1000, "per_1000_residents")
            add("tract", tract.geoid, "MedianDelayRatio", tract.median_delay, "ratio")
        for quintile in range(1, 6):
            add("equity", str(quintile), "MedianDelayRatio", self.equity.quintile_delay.get(quintile), "ratio")
        add("equity", "", "EquityGapIndex", self.equity.gap_index, "ratio")
        add("equity", "all years", "EquityGapIndex", self.equity_all.gap_index, "ratio")
        for line in self.budget:
            subject = f"{line.department} ({line.line_type})"
            for name, value in (("Budgeted", line.budgeted), ("Actual", line.actual), ("Variance", line.variance)):
                add("budget", subject, name, value, "dollars")
            add("budget", subject, "VariancePct", line.variance_pct, "percent")
        return rows


UNITS = {"RequestsOpened": "requests", "RequestsClosed": "requests", "MedianHoursToClose": "hours",
         "P90HoursToClose": "hours", "OnTimePct": "percent", "BacklogAtPeriodEnd": "requests"}


def _table_rows(conn: psycopg2.extensions.connection, name: str, where: str = "true",
                params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """A reports table as its asset left it; none when that asset has not run yet."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{name}",))
        if cur.fetchone()["to_regclass"] is None:
            conn.commit()
            return []
        cur.execute(sql.SQL("select * from {} where {}").format(sql.Identifier(SCHEMA, name), sql.SQL(where)),
                    params)
        rows = [dict(r) for r in cur.fetchall()]
    conn.commit()
    return rows


def build_reports(conn: psycopg2.extensions.connection, config: ReportsConfig, links: dict[str, str]) -> list[Report]:
    """The report of every reporting period, newest first. The all-time equity is the same in each: computed once
    (1.8 s over a million requests)."""
    equity_all = data.equity(conn, None)
    return [build_report(conn, config, period, links, equity_all) for period in data.reporting_periods(conn, config)]


def build_report(conn: psycopg2.extensions.connection, config: ReportsConfig, period: Period,
                 links: dict[str, str], equity_all: data.Equity | None = None) -> Report:
    measures = data.period_measures(conn, period)
    year = period.fiscal_year
    index = _table_rows(conn, TRANSPARENCY_INDEX.name)
    report = Report(
        city=config.city, period=period, small_cell_min=config.small_cell_min,
        city_measures=measures[("city", None)],
        by_type=sorted(((key, service_fields(m, config.small_cell_min)) for (dim, key), m in measures.items()
                        if dim == "request_type" and key is not None and m.opened + m.closed + m.backlog > 0),
                       key=lambda item: -(item[1].get("RequestsOpened") or 0)),
        trend=data.monthly_trend(conn, period, config.trend_months, config.small_cell_min),
        tracts=data.tracts(conn, period, config.small_cell_min),
        equity=data.equity(conn, period),
        equity_all=data.equity(conn, None) if equity_all is None else equity_all,
        budget=data.budget_lines(conn, config.city, year),
        departments=sorted(_table_rows(conn, DEPARTMENT_SCORECARDS.name, '"FiscalYear" = %s', (year,)),
                           key=lambda r: -(r.get("Budgeted") or 0)),
        districts=sorted(_table_rows(conn, DISTRICT_SCORECARDS.name, '"FiscalYear" = %s', (year,)),
                         key=lambda r: (len(r["CouncilDistrict"]), r["CouncilDistrict"])),
        quality=sorted((r for r in index if r["Scope"] == "dataset"), key=lambda r: r["Title"]),
        portal=next((r for r in index if r["Scope"] == "portal"), None),
        links=links,
    )
    report.charts = [
        charts.requests_chart(report.trend, period),
        charts.time_to_close_chart(report.trend, period),
        charts.on_time_chart(report.trend, period),
        charts.backlog_chart(report.trend, period),
        charts.request_rate_map(report.tracts, period, config.small_cell_min),
        charts.delay_map(report.tracts, period, config.small_cell_min),
        charts.equity_chart(report.equity, report.equity_all, period),
        charts.budget_chart(report.budget, period, config.city),
    ]
    return report
