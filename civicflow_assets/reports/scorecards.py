"""Scorecards per department (the service levels of the request types it owns, its budget against actual) and
per council district (service levels beside the citywide figures), one row per fiscal year of the report."""

from __future__ import annotations

from typing import Any

import psycopg2.extensions

from civicflow_assets.reports.data import BudgetLine, Measures, Period, budget_lines, period_measures


def service_fields(measures: Measures | None, small_cell_min: int) -> dict[str, Any]:
    """The measures as scorecard fields; a count of 1 to small_cell_min - 1 and what is measured on those
    requests are withheld (rule PII3)."""
    if measures is None:
        return {"SmallCellSuppressed": False}

    def small(count: int) -> bool:
        return 0 < count < small_cell_min

    opened_small, closed_small = small(measures.opened), small(measures.closed)
    sla_small, backlog_small = closed_small or small(measures.with_sla), small(measures.backlog)
    return {
        "RequestsOpened": None if opened_small else measures.opened,
        "RequestsClosed": None if closed_small else measures.closed,
        "MedianHoursToClose": None if closed_small else measures.median_hours,
        "P90HoursToClose": None if closed_small else measures.p90_hours,
        "OnTimePct": None if sla_small else measures.on_time_pct,
        "BacklogAtPeriodEnd": None if backlog_small else measures.backlog,
        "SmallCellSuppressed": opened_small or closed_small or sla_small or backlog_small,
    }


def _period_fields(period: Period) -> dict[str, Any]:
    return {"FiscalYear": period.fiscal_year, "DataThrough": period.last_month, "PeriodComplete": period.complete}


def owned_request_types(conn: psycopg2.extensions.connection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute('select "OwningDepartment", string_agg(distinct "RequestType", \'; \' order by "RequestType")'
                    ' from marts.fct_service_requests where "OwningDepartment" is not null group by 1')
        found = dict(cur.fetchall())
    conn.commit()
    return found


def _budget_fields(line: BudgetLine | None) -> dict[str, Any]:
    if line is None:
        return {"VarianceStatus": "no budget published"}
    return {"Budgeted": line.budgeted, "Actual": line.actual, "Variance": line.variance,
            "VariancePct": line.variance_pct, "VarianceStatus": line.status,
            "BudgetedChangePct": line.budgeted_change_pct}


def department_rows(period: Period, measures: dict[tuple[str, str | None], Measures], lines: list[BudgetLine],
                    owned: dict[str, str], small_cell_min: int) -> list[dict[str, Any]]:
    """Every department with an expense budget line in the year or requests of its types in the period."""
    budgets = {line.department: line for line in lines if line.line_type == "expense"}
    served = {key for (dimension, key) in measures if dimension == "department" and key is not None}
    rows = []
    for department in sorted(set(budgets) | served):
        rows.append({**_period_fields(period), "Department": department, "RequestTypes": owned.get(department),
                     **service_fields(measures.get(("department", department)), small_cell_min),
                     **_budget_fields(budgets.get(department))})
    return rows


def district_rows(period: Period, measures: dict[tuple[str, str | None], Measures],
                  small_cell_min: int) -> list[dict[str, Any]]:
    """Every council district with requests in the period (requests in no district are in the city's figures)."""
    city = measures.get(("city", None))
    districts = sorted((key for (dimension, key) in measures if dimension == "council_district" and key is not None),
                       key=lambda d: (len(d), d))
    return [{**_period_fields(period), "CouncilDistrict": district,
             **service_fields(measures[("council_district", district)], small_cell_min),
             "CityMedianHoursToClose": city.median_hours if city else None,
             "CityOnTimePct": city.on_time_pct if city else None} for district in districts]


def build_scorecards(conn: psycopg2.extensions.connection, periods: list[Period], city: str,
                     small_cell_min: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    owned = owned_request_types(conn)
    departments: list[dict[str, Any]] = []
    districts: list[dict[str, Any]] = []
    for period in periods:
        measures = period_measures(conn, period)
        departments += department_rows(period, measures, budget_lines(conn, city, period.fiscal_year), owned,
                                       small_cell_min)
        districts += district_rows(period, measures, small_cell_min)
    return departments, districts
