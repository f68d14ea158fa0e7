"""What the reports show, read from the marts: reporting periods, service-level measures, monthly trends, tracts,
equity by income quintile and budget lines. Figures follow the marts' own definitions (dbt_project/models/marts):
requests opened count by the month created, closed requests and their hours to close by the month they left the
backlog, delay as hours to close over the request type's citywide median."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

import psycopg2.extensions
import shapely
from psycopg2.extras import RealDictCursor

from civicflow_assets.reports.config import ReportsConfig

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """A fiscal year, named by the calendar year it ends in, cut at the last month with data."""

    fiscal_year: int
    start: date
    end: date  # the first day after the fiscal year
    last_month: date  # the last month of the year that has data

    @property
    def label(self) -> str:
        return f"FY{self.fiscal_year}"

    @property
    def slug(self) -> str:
        return f"fy{self.fiscal_year}"

    @property
    def data_end(self) -> date:
        return add_months(self.last_month, 1)

    @property
    def complete(self) -> bool:
        return self.data_end >= self.end

    @property
    def months(self) -> str:
        first = f"{MONTH_NAMES[self.start.month - 1]} {self.start.year}"
        last = f"{MONTH_NAMES[self.last_month.month - 1]} {self.last_month.year}"
        return f"{first} to {last}" + ("" if self.complete else " (year to date)")


def fiscal_year(day: date, start_month: int) -> int:
    return day.year + (1 if start_month > 1 and day.month >= start_month else 0)


def fiscal_period(year: int, start_month: int, last_month: date) -> Period:
    start = date(year - 1, start_month, 1) if start_month > 1 else date(year, 1, 1)
    end = add_months(start, 12)
    return Period(year, start, end, min(last_month, add_months(end, -1)))


def _rows(conn: psycopg2.extensions.connection, query: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, params)
        rows = [dict(r) for r in cur.fetchall()]
    conn.commit()
    return rows


def reporting_periods(conn: psycopg2.extensions.connection, config: ReportsConfig) -> list[Period]:
    """The latest `config.periods` fiscal years with 311 data, newest first."""
    found = _rows(conn, 'select min("Month") as first, max("Month") as last from marts.service_levels')[0]
    if found["last"] is None:
        return []
    latest = fiscal_year(found["last"], config.fiscal_year_start_month)
    periods = [fiscal_period(year, config.fiscal_year_start_month, found["last"])
               for year in range(latest, latest - config.periods, -1)]
    return [p for p in periods if p.end > found["first"]]


# -- service levels


@dataclass(frozen=True)
class Measures:
    opened: int
    closed: int
    median_hours: float | None
    p90_hours: float | None
    with_sla: int
    on_time_pct: float | None
    backlog: int  # open at the end of the period's last month with data


MEASURES_SQL = """
select
    case when grouping("RequestType") = 0 then 'request_type'
         when grouping("CouncilDistrict") = 0 then 'council_district'
         when grouping("OwningDepartment") = 0 then 'department'
         when grouping("TractGeoid") = 0 then 'tract'
         else 'city' end as dimension,
    coalesce("RequestType", "CouncilDistrict", "OwningDepartment", "TractGeoid") as key,
    count(*) filter (where "CreatedMonth" >= %(start)s) as opened,
    count(*) filter (where "ClosedMonth" < %(end)s) as closed,
    percentile_cont(0.5) within group (order by "HoursToClose") filter (where "ClosedMonth" < %(end)s)
        as median_hours,
    percentile_cont(0.9) within group (order by "HoursToClose") filter (where "ClosedMonth" < %(end)s)
        as p90_hours,
    count("OnTime") filter (where "ClosedMonth" < %(end)s) as with_sla,
    100.0 * count(*) filter (where "OnTime" and "ClosedMonth" < %(end)s)
        / nullif(count("OnTime") filter (where "ClosedMonth" < %(end)s), 0) as on_time_pct,
    count(*) filter (where "ClosedMonth" is null or "ClosedMonth" >= %(end)s) as backlog
from marts.fct_service_requests
-- Only requests that matter to the period: opened in it, closed in it, or still open at its end.
where "CreatedMonth" < %(end)s and ("ClosedMonth" is null or "ClosedMonth" >= %(start)s)
group by grouping sets ((), ("RequestType"), ("CouncilDistrict"), ("OwningDepartment"), ("TractGeoid"))
"""


def period_measures(conn: psycopg2.extensions.connection, period: Period) -> dict[tuple[str, str | None], Measures]:
    """(dimension, key) -> measures: ('city', None) citywide, and by request type, council district, owning
    department and tract (key None: requests without one). One pass over the fact table."""
    rows = _rows(conn, MEASURES_SQL, {"start": period.start, "end": period.data_end})
    return {(r["dimension"], r["key"]): Measures(
        r["opened"], r["closed"], r["median_hours"], r["p90_hours"], r["with_sla"],
        float(r["on_time_pct"]) if r["on_time_pct"] is not None else None, r["backlog"]) for r in rows}


@dataclass(frozen=True)
class MonthPoint:
    """Citywide figures of one month; None where withheld (a count below small_cell_min, rule PII3)."""

    month: date
    opened: int | None
    closed: int | None
    median_hours: float | None
    p90_hours: float | None
    on_time_pct: float | None
    backlog: int | None


TREND_SQL = """
with levels as (
    select
        "Month" as month,
        sum("RequestsOpened") as opened,
        sum("RequestsClosed") as closed,
        sum("RequestsWithSlaOutcome") as with_sla,
        round(sum("OnTimePct" * "RequestsWithSlaOutcome") / 100) as on_time,
        sum("OpenBacklogAtMonthEnd") as backlog
    from marts.service_levels
    where "Month" between %(first)s and %(last)s
    group by "Month"
),
times as (
    -- Percentiles do not add up across the mart's groups: read them from the requests.
    select
        "ClosedMonth" as month,
        percentile_cont(0.5) within group (order by "HoursToClose") as median_hours,
        percentile_cont(0.9) within group (order by "HoursToClose") as p90_hours
    from marts.fct_service_requests
    where "ClosedMonth" between %(first)s and %(last)s
    group by "ClosedMonth"
)
select levels.*, times.median_hours, times.p90_hours
from levels left join times on levels.month = times.month
order by levels.month
"""


def monthly_trend(conn: psycopg2.extensions.connection, period: Period, months: int,
                  small_cell_min: int) -> list[MonthPoint]:
    """Citywide, month by month, the `months` months up to the period's last month with data."""
    rows = _rows(conn, TREND_SQL, {"first": add_months(period.last_month, 1 - months), "last": period.last_month})
    points = []
    for r in rows:
        opened, closed, with_sla, backlog = (int(r[k]) for k in ("opened", "closed", "with_sla", "backlog"))
        few_closed = 0 < closed < small_cell_min
        points.append(MonthPoint(
            r["month"], None if 0 < opened < small_cell_min else opened, None if few_closed else closed,
            None if few_closed else r["median_hours"], None if few_closed else r["p90_hours"],
            100.0 * float(r["on_time"]) / with_sla if with_sla >= small_cell_min and not few_closed else None,
            None if 0 < backlog < small_cell_min else backlog))
    return points


# -- tracts and equity

DELAYS_SQL = """
with type_medians as (
    select "RequestType", percentile_cont(0.5) within group (order by "HoursToClose") as median_hours
    from marts.fct_service_requests
    where "HoursToClose" is not null
    group by "RequestType"
),
delays as (
    select requests."TractGeoid", requests."HoursToClose" / nullif(type_medians.median_hours, 0) as ratio
    from marts.fct_service_requests as requests
    inner join type_medians on requests."RequestType" = type_medians."RequestType"
    where requests."TractGeoid" is not null and requests."HoursToClose" is not null
        and (%(start)s::date is null or requests."ClosedMonth" >= %(start)s::date)
        and (%(end)s::date is null or requests."ClosedMonth" < %(end)s::date)
)
"""


@dataclass(frozen=True)
class Tract:
    geoid: str
    population: int | None
    income_quintile: int | None
    opened: int
    per_1000: float | None  # requests opened in the period per 1,000 residents
    with_delay: int
    median_delay: float | None  # median delay ratio of the requests closed in the period
    geometry: shapely.Geometry
    small_cell_min: int

    # Rule PII3: a count of 1 to small_cell_min - 1 requests could point at the people who made them; none cannot.
    @property
    def rate_suppressed(self) -> bool:
        return 0 < self.opened < self.small_cell_min

    @property
    def delay_suppressed(self) -> bool:
        return 0 < self.with_delay < self.small_cell_min


def tracts(conn: psycopg2.extensions.connection, period: Period, small_cell_min: int) -> list[Tract]:
    """Every 2020 tract of demographic_equity with the period's requests and delay. A tract with fewer than
    `small_cell_min` requests (but some) gets no figure (rule PII3), as in the published aggregates."""
    rows = _rows(conn, DELAYS_SQL + """,
        tract_delays as (
            select "TractGeoid", count(ratio) as with_delay,
                percentile_cont(0.5) within group (order by ratio) as median_delay
            from delays group by "TractGeoid"
        ),
        opened as (
            select "TractGeoid", count(*) as opened
            from marts.fct_service_requests
            where "TractGeoid" is not null and "CreatedMonth" >= %(start)s::date and "CreatedMonth" < %(end)s::date
            group by "TractGeoid"
        )
        select equity."TractGeoid" as geoid, equity."Population" as population,
            equity."IncomeQuintile" as income_quintile, coalesce(opened.opened, 0) as opened,
            coalesce(tract_delays.with_delay, 0) as with_delay, tract_delays.median_delay,
            st_asbinary(equity."Geometry") as geometry
        from marts.demographic_equity as equity
        left join opened on equity."TractGeoid" = opened."TractGeoid"
        left join tract_delays on equity."TractGeoid" = tract_delays."TractGeoid"
        order by equity."TractGeoid"
    """, {"start": period.start, "end": period.data_end})
    found = []
    for r in rows:
        tract = Tract(r["geoid"], r["population"], r["income_quintile"], r["opened"], None, r["with_delay"], None,
                      shapely.from_wkb(bytes(r["geometry"])), small_cell_min)
        found.append(dataclasses.replace(
            tract,
            per_1000=round(1000.0 * r["opened"] / r["population"], 2)
            if r["population"] and not tract.rate_suppressed else None,
            median_delay=None if tract.delay_suppressed else r["median_delay"]))
    return found


@dataclass(frozen=True)
class Equity:
    quintile_delay: dict[int, float | None]  # income quintile (1 = lowest) -> median delay ratio
    quintile_requests: dict[int, int]  # requests with a delay ratio, per quintile
    gap_index: float | None  # quintile 1 over quintile 5: above 1, the lowest-income tracts wait longer


def equity(conn: psycopg2.extensions.connection, period: Period | None) -> Equity:
    """Delay by income quintile for the requests closed in the period (all requests: None, which is what the
    demographic_equity mart's EquityGapIndex measures)."""
    rows = _rows(conn, DELAYS_SQL + """
        select equity."IncomeQuintile" as quintile, count(delays.ratio) as requests,
            percentile_cont(0.5) within group (order by delays.ratio) as median_delay
        from delays
        inner join marts.demographic_equity as equity on delays."TractGeoid" = equity."TractGeoid"
        where equity."IncomeQuintile" is not null
        group by equity."IncomeQuintile"
        order by 1
    """, {"start": period.start if period else None, "end": period.data_end if period else None})
    delay = {r["quintile"]: r["median_delay"] for r in rows}
    lowest, highest = delay.get(1), delay.get(5)
    return Equity(delay, {r["quintile"]: r["requests"] for r in rows},
                  lowest / highest if lowest is not None and highest else None)


# -- budget


@dataclass(frozen=True)
class BudgetLine:
    department: str
    line_type: str  # expense or revenue
    budgeted: float | None
    actual: float | None
    variance: float | None  # actual - budgeted over the lines that have both
    variance_pct: float | None
    budgeted_change_pct: float | None  # against the previous fiscal year

    @property
    def status(self) -> str:
        """Under budget is favorable for an expense, over budget for revenue (the mart's IsFavorable)."""
        if self.variance is None:
            return "no actual published" if self.actual is None else "no budget published"
        favorable = self.variance <= 0 if self.line_type == "expense" else self.variance >= 0
        return "favorable" if favorable else "unfavorable"


BUDGET_SQL = """
select
    "Department" as department,
    "LineType" as line_type,
    sum("Budgeted") as budgeted,
    sum("Actual") as actual,
    sum("Variance") as variance,
    sum("Budgeted") filter (where "Variance" is not null) as compared_budget,
    sum("BudgetedYoYChange") as budgeted_change,
    sum("Budgeted" - "BudgetedYoYChange") as previous_budget
from marts.budget_variance
where "City" = %(city)s and "FiscalYear" = %(year)s
group by "Department", "LineType"
order by "LineType", sum("Budgeted") desc nulls last, sum("Actual") desc nulls last, "Department"
"""


def _float(value: object) -> float | None:
    return float(value) if value is not None else None


def budget_lines(conn: psycopg2.extensions.connection, city: str, year: int) -> list[BudgetLine]:
    """Budget against actual by department and line type for one fiscal year of one city."""
    lines = []
    for r in _rows(conn, BUDGET_SQL, {"city": city, "year": year}):
        variance, compared = _float(r["variance"]), _float(r["compared_budget"])
        change, previous = _float(r["budgeted_change"]), _float(r["previous_budget"])
        lines.append(BudgetLine(
            r["department"], r["line_type"], _float(r["budgeted"]), _float(r["actual"]), variance,
            round(100 * variance / compared, 2) if variance is not None and compared else None,
            round(100 * change / previous, 2) if change is not None and previous else None))
    return lines
