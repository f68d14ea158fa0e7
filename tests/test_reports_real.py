"""The transparency report rendered from the marts built on the real Chattanooga (and Boston) data: its figures
against the marts, computed here another way, and the page in Debian's headless Chromium: it loads without errors
in under 3 seconds, asks for nothing outside itself, and shows the charts and the maps (a screenshot to look at)."""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from datetime import date

import psycopg2
import pytest

from civicflow_assets.reports import render
from civicflow_assets.reports.config import load_reports_config
from civicflow_assets.reports.data import reporting_periods
from civicflow_assets.reports.publishing import small_cell_check
from civicflow_assets.reports.report import Report, build_report
from civicflow_assets.reports.scorecards import build_scorecards
from civicflow_assets.reports.tables import (
    DEPARTMENT_SCORECARDS,
    DISTRICT_SCORECARDS,
    REPORT_FIGURES,
    write_table,
)
from civicflow_assets.settings import REPO_ROOT
from tests.conftest import scalar
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_marts_real import DBT_SELECT, land_real_data, percentile_cont, run_dbt

SCREENSHOT = REPO_ROOT / ".civicflow" / "screenshots" / "transparency_report.png"
FY2024 = (date(2023, 7, 1), date(2024, 6, 1))  # first and last month


@pytest.fixture(scope="module")
def report(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Report:
    land_real_data(warehouse_url)
    run_dbt(warehouse_url, tmp_path_factory.mktemp("dbt_reports_real"), "build", *DBT_SELECT)
    config = load_reports_config()
    with contextlib.closing(psycopg2.connect(warehouse_url)) as conn:
        periods = reporting_periods(conn, config)
        departments, districts = build_scorecards(conn, periods, config.city, config.small_cell_min)
        write_table(conn, DEPARTMENT_SCORECARDS, departments)
        write_table(conn, DISTRICT_SCORECARDS, districts)
        period = next(p for p in periods if p.fiscal_year == 2024)
        return build_report(conn, config, period, {"report": "http://ckan.invalid/dataset/transparency-report"})


@pytest.fixture(scope="module")
def page_file(report: Report, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("report") / "transparency-report-fy2024.html"
    path.write_text(render.render_html(report), encoding="utf-8")
    return path


def test_the_periods_are_the_latest_fiscal_years(conn, report) -> None:
    periods = reporting_periods(conn, load_reports_config())
    assert [p.label for p in periods] == ["FY2025", "FY2024", "FY2023"]
    assert not periods[0].complete and periods[0].last_month == date(2024, 9, 1)  # the exports end in September
    assert report.period.complete and report.period.months == "July 2023 to June 2024"


def test_service_levels_match_the_marts(conn, report) -> None:
    first, last = FY2024
    levels = 'from marts.service_levels where "Month" between %s and %s'
    kpis = report.city_measures
    assert kpis.opened == scalar(conn, f'select sum("RequestsOpened") {levels}', first, last) > 2000
    assert kpis.closed == scalar(conn, f'select sum("RequestsClosed") {levels}', first, last)
    on_time = scalar(conn, f'select sum("OnTimePct" * "RequestsWithSlaOutcome") / sum("RequestsWithSlaOutcome")'
                           f' {levels}', first, last)
    assert kpis.on_time_pct == pytest.approx(float(on_time), rel=1e-9)
    assert kpis.backlog == scalar(conn, 'select sum("OpenBacklogAtMonthEnd") from marts.service_levels'
                                        ' where "Month" = %s', last)
    with conn.cursor() as cur:
        cur.execute('select "HoursToClose" from marts.fct_service_requests where "ClosedMonth" between %s and %s'
                    ' and "HoursToClose" is not null', (first, last))
        closed = [h for (h,) in cur.fetchall()]
    assert kpis.median_hours == pytest.approx(statistics.median(closed), rel=1e-12)
    assert kpis.p90_hours == pytest.approx(percentile_cont(closed, 0.9), rel=1e-12)
    # The monthly trend adds up to the year.
    months = [p for p in report.trend if first <= p.month <= last]
    assert len(months) == 12 and len(report.trend) == 24
    assert sum(p.opened for p in months) == kpis.opened and months[-1].backlog == kpis.backlog


def test_the_page_shows_the_marts_figures(report, page_file) -> None:
    page = page_file.read_text()
    shown = dict(re.findall(r'data-kpi="(\w+)" data-value="([^"]*)"', page))
    kpis = report.city_measures
    assert int(shown["RequestsOpened"]) == kpis.opened and int(shown["BacklogAtPeriodEnd"]) == kpis.backlog
    assert float(shown["MedianHoursToClose"]) == pytest.approx(kpis.median_hours)
    assert float(shown["EquityGapIndexAllYears"]) == pytest.approx(report.equity_all.gap_index)
    assert f"{kpis.opened:,}" in page and f"{kpis.on_time_pct:.1f}%" in page
    assert page.count("<svg") == 8
    # Self-contained: no script, nothing loaded from elsewhere (images are data: URIs); links only to CKAN.
    assert "<script" not in page and not re.search(r"url\((?!#)", page)
    assert not re.search(r'(?:src|href)="(?!#|data:|http://ckan\.invalid/)', page)


def test_tracts_and_equity_match_the_marts(conn, report) -> None:
    first, last = FY2024
    with conn.cursor() as cur:
        cur.execute('select e."TractGeoid", e."Population", coalesce(sum(t."RequestsOpened"), 0)'
                    ' from marts.demographic_equity e left join marts.service_levels_by_tract t'
                    ' on t."TractGeoid" = e."TractGeoid" and t."Month" between %s and %s group by 1, 2', (first, last))
        opened = {geoid: (population, int(n)) for geoid, population, n in cur.fetchall()}
    conn.commit()
    tracts = {t.geoid: t for t in report.tracts}
    assert set(tracts) == set(opened) and len(tracts) == 87
    shown = 0
    for geoid, (population, n) in opened.items():
        tract = tracts[geoid]
        assert tract.opened == n
        if 0 < n < report.small_cell_min:
            assert tract.per_1000 is None and tract.rate_suppressed  # PII3
        elif population:
            assert tract.per_1000 == round(1000 * n / population, 2)
            shown += n > 0
    assert shown > 30
    # Over all years, the report's equity measures are the mart's own.
    assert report.equity_all.gap_index == pytest.approx(
        float(scalar(conn, 'select max("EquityGapIndex") from marts.demographic_equity')), rel=1e-12)
    with conn.cursor() as cur:
        cur.execute('select distinct "IncomeQuintile", "QuintileMedianDelayRatio" from marts.demographic_equity'
                    ' where "IncomeQuintile" is not null')
        mart = dict(cur.fetchall())
    conn.commit()
    assert report.equity_all.quintile_delay == pytest.approx(mart, rel=1e-12)
    assert report.equity.gap_index == pytest.approx(report.equity.quintile_delay[1] / report.equity.quintile_delay[5])


def test_budget_matches_the_mart(conn, report) -> None:
    with conn.cursor() as cur:
        cur.execute('select "Department", sum("Budgeted") from marts.budget_variance'
                    " where \"City\" = 'Chattanooga' and \"FiscalYear\" = 2024 and \"LineType\" = 'expense'"
                    ' group by 1')
        mart = {d: float(b) if b is not None else None for d, b in cur.fetchall()}
    conn.commit()
    lines = {line.department: line for line in report.budget if line.line_type == "expense"}
    assert {d: line.budgeted for d, line in lines.items()} == mart
    # The real extracts have no actual for a budgeted year: no variance is invented.
    assert {line.status for line in lines.values()} == {"no actual published"}
    scorecard = next(r for r in report.departments if r["Department"] == "Public Works")
    assert float(scorecard["Budgeted"]) == mart["Public Works"]
    # Public Works owns every request type but Sidewalks (Transportation's).
    sidewalks = dict(report.by_type)["Sidewalks"]["RequestsOpened"]
    assert scorecard["RequestsOpened"] == report.city_measures.opened - sidewalks


def test_every_figure_goes_out_as_data(conn, report) -> None:
    rows = report.figures()
    small_cell_check(REPORT_FIGURES, rows, report.small_cell_min)
    assert write_table(conn, REPORT_FIGURES, rows) == len(rows)
    opened = scalar(conn, 'select "Value" from reports.report_figures where "FiscalYear" = 2024'
                          " and \"Section\" = 'service_levels' and \"Subject\" = '' and \"Measure\" = 'RequestsOpened'")
    assert opened == report.city_measures.opened
    assert scalar(conn, "select count(*) from reports.report_figures where \"Section\" = 'tract'") == 2 * 87


def test_the_pdf_has_the_charts_and_tables(report) -> None:
    document = render.render_pdf(report)
    assert document.startswith(b"%PDF-") and len(document) > 50_000
    assert len(re.findall(rb"/Type /Page\b", document)) >= 8
    assert render.render_pdf(report) == document  # the same figures, the same bytes: not uploaded again


@pytest.mark.slow
def test_the_report_opens_in_chromium_quickly_and_shows_charts_and_maps(report, page_file) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith(("file:", "data:")) else None)
        started = time.monotonic()
        page.goto(page_file.as_uri(), wait_until="load", timeout=10_000)
        seconds = time.monotonic() - started
        figures = page.locator("figure svg")
        assert figures.count() == 8
        for chart_id in ("requests-by-month", "requests-per-1000-map", "median-delay-map", "budget-by-department"):
            box = page.locator(f"#{chart_id} svg").bounding_box()
            assert box and box["width"] > 300 and box["height"] > 150, chart_id
        opened = page.locator('[data-kpi="RequestsOpened"] .value').inner_text()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert opened == f"{report.city_measures.opened:,}"
    assert seconds < 3, f"the report took {seconds:.2f} s to load"
    assert errors == [] and outside == []
    assert SCREENSHOT.stat().st_size > 100_000


def test_a_small_count_about_to_go_out_fails_the_publication() -> None:
    from civicflow_assets.reports.publishing import SmallCellLeak

    rows = [{"FiscalYear": 2024, "Section": "trend", "Subject": "2024-01", "Measure": "RequestsOpened", "Value": 3.0,
             "Unit": "requests"}, {"FiscalYear": 2024, "Department": "Parks", "RequestsOpened": 0}]
    with pytest.raises(SmallCellLeak, match=r"PII3 failed for 1 value\(s\) in Value \(RequestsOpened\) \(1\)"):
        small_cell_check(REPORT_FIGURES, rows, 5)
    assert small_cell_check(REPORT_FIGURES, rows[1:], 5).passed  # none is not a small count
