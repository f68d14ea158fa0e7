"""The report's charts and maps, drawn with matplotlib (maps through geopandas), as inline SVG for the web pages
and as figures for the PDF. Figures are made without pyplot: no global state, safe in any Dagster executor."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas
import matplotlib
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from civicflow_assets.reports.data import BudgetLine, Equity, MonthPoint, Period, Tract

BLUE, ORANGE, GREEN, RED, GREY = "#1f5fa8", "#e08a1e", "#2e8540", "#c0392b", "#9aa0a6"
STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller pages that a screen reader and a search can read
    "svg.hashsalt": "civicflow",  # the same data draws the same bytes, so an unchanged report is not re-uploaded
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.titlesize": 10,
}
SUPPRESSED = {"facecolor": "#e6e6e6", "edgecolor": "#999999", "hatch": "////", "linewidth": 0.3}
EMPTY = {"color": "#fbfbfb", "edgecolor": "#c8c8c8"}


@dataclass(frozen=True)
class Chart:
    """One chart or map: a stable id (its file name as an embeddable view), a title, a caption, and how to draw it
    on an Axes, so that the web page (one figure each) and the PDF (several on a page) draw the same thing."""

    id: str
    title: str
    caption: str
    draw: Callable[[Axes], None]
    size: tuple[float, float] = (6.4, 3.0)
    kind: str = "chart"  # chart or map

    def figure(self) -> Figure:
        with style():
            figure = Figure(figsize=self.size)
            self.draw(figure.subplots())
        return figure

    @functools.cached_property
    def svg(self) -> str:
        """The chart as an <svg> element to put inside HTML (without the XML prolog and doctype). Kept: the
        report's page and the chart's own embeddable page show the same one."""
        buffer = io.StringIO()
        with style():
            self.figure().savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
        return re.sub(r"^.*?(?=<svg)", "", buffer.getvalue(), flags=re.S)


@contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def _value(value: float | None) -> float:
    """A withheld or missing figure is a gap in the chart, never a zero."""
    return float(value) if value is not None else float("nan")


def _months(points: Sequence[MonthPoint]) -> list[str]:
    return [p.month.strftime("%b\n%Y") if p.month.month in (1, 7) else p.month.strftime("%b") for p in points]


def _shade_period(ax, points: Sequence[MonthPoint], period: Period) -> None:
    inside = [i for i, p in enumerate(points) if period.start <= p.month < period.end]
    if inside:
        ax.axvspan(inside[0] - 0.5, inside[-1] + 0.5, color="#f2f6fb", zorder=0, label=period.label)


def _month_axis(ax, points: Sequence[MonthPoint]) -> None:
    labels = _months(points)
    ticks = [i for i, p in enumerate(points) if p.month.month in (1, 4, 7, 10)]
    ax.set_xticks(ticks, [labels[i] for i in ticks])
    ax.set_xlim(-0.6, len(points) - 0.4)


def requests_chart(points: Sequence[MonthPoint], period: Period) -> Chart:
    def draw(ax: Axes) -> None:
        _shade_period(ax, points, period)
        x = range(len(points))
        ax.bar([i - 0.2 for i in x], [_value(p.opened) for p in points], width=0.4, color=BLUE, label="opened")
        ax.bar([i + 0.2 for i in x], [_value(p.closed) for p in points], width=0.4, color=ORANGE, label="closed")
        _month_axis(ax, points)
        ax.set_ylabel("requests")
        ax.legend(frameon=False, ncols=3, loc="upper left", fontsize=8)
        ax.set_title("311 requests opened and closed by month")

    return Chart("requests-by-month", "Requests opened and closed by month",
                 f"Citywide 311 requests opened (by month created) and closed (by month they left the backlog); "
                 f"{period.label} is shaded.", draw)


def time_to_close_chart(points: Sequence[MonthPoint], period: Period) -> Chart:
    def days(value: float | None) -> float:
        return _value(value) / 24

    def draw(ax: Axes) -> None:
        _shade_period(ax, points, period)
        ax.plot([days(p.median_hours) for p in points], color=BLUE, marker="o", markersize=3, label="median")
        ax.plot([days(p.p90_hours) for p in points], color=ORANGE, marker="o", markersize=3,
                label="90th percentile")
        _month_axis(ax, points)
        ax.set_ylabel("days to close")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, ncols=3, loc="upper left", fontsize=8)
        ax.set_title("Time to close, requests closed in the month")

    return Chart("time-to-close-by-month", "Time to close by month",
                 "Median and 90th percentile days from a request's creation to its closing, for the requests "
                 "closed in each month.", draw)


def on_time_chart(points: Sequence[MonthPoint], period: Period) -> Chart:
    def draw(ax: Axes) -> None:
        _shade_period(ax, points, period)
        ax.plot([_value(p.on_time_pct) for p in points], color=GREEN,
                marker="o", markersize=3, label="closed within the service level")
        _month_axis(ax, points)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% on time")
        ax.legend(frameon=False, loc="lower left", fontsize=8)
        ax.set_title("On-time share, requests closed in the month")

    return Chart("on-time-by-month", "On-time share by month",
                 "Share of the requests closed in each month that were closed within their request type's "
                 "service level agreement.", draw)


def backlog_chart(points: Sequence[MonthPoint], period: Period) -> Chart:
    def draw(ax: Axes) -> None:
        _shade_period(ax, points, period)
        x = list(range(len(points)))
        backlog = [_value(p.backlog) for p in points]
        ax.fill_between(x, backlog, color=RED, alpha=0.15, linewidth=0)
        ax.plot(x, backlog, color=RED, marker="o", markersize=3, label="open at month end")
        _month_axis(ax, points)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("open requests")
        ax.legend(frameon=False, loc="upper left", fontsize=8)
        ax.set_title("Backlog at month end")

    return Chart("backlog-by-month", "Backlog by month",
                 "Requests open at the end of each month: created by then and not yet closed.", draw)


def _tract_frame(tracts: Sequence[Tract]) -> geopandas.GeoDataFrame:
    nan = float("nan")
    frame = geopandas.GeoDataFrame(
        {"geoid": [t.geoid for t in tracts],
         "per_1000": [t.per_1000 if t.per_1000 is not None else nan for t in tracts],
         "rate_suppressed": [t.rate_suppressed for t in tracts],
         "median_delay": [t.median_delay if t.median_delay is not None else nan for t in tracts],
         "delay_suppressed": [t.delay_suppressed for t in tracts]},
        geometry=[t.geometry for t in tracts], crs="EPSG:4326")
    # Tennessee State Plane (ftUS): true shapes; simplified to 150 ft, a lighter page than the tracts' full detail.
    projected = frame.to_crs("EPSG:2274")
    projected["geometry"] = projected.geometry.simplify(150)
    return projected


def _draw_map(ax: Axes, frame: geopandas.GeoDataFrame, column: str, suppressed: str, title: str, label: str,
              empty: str, small_cell_min: int, extend: str = "neither", **style_kwargs: object) -> None:
    """Tracts with a value coloured; suppressed ones hatched; the rest (no requests) left blank."""
    frame.plot(ax=ax, color=EMPTY["color"], edgecolor=EMPTY["edgecolor"], linewidth=0.3)
    frame[frame[column].notna()].plot(ax=ax, column=column, legend=True, edgecolor="white", linewidth=0.3,
                                      legend_kwds={"label": label, "shrink": 0.6, "extend": extend},
                                      **style_kwargs)
    hidden = frame[frame[suppressed]]
    if len(hidden):
        hidden.plot(ax=ax, **SUPPRESSED)
    ax.set_axis_off()
    ax.set_title(title)
    ax.legend(handles=[Patch(**SUPPRESSED, label=f"1 to {small_cell_min - 1} requests: not shown (rule PII3)"),
                       Patch(facecolor=EMPTY["color"], edgecolor=EMPTY["edgecolor"], label=empty)],
              loc="upper left", bbox_to_anchor=(0.0, 0.02), frameon=False, fontsize=7)


def request_rate_map(tracts: Sequence[Tract], period: Period, small_cell_min: int) -> Chart:
    frame = _tract_frame(tracts)
    values = sorted(t.per_1000 for t in tracts if t.per_1000 is not None)
    # A tract with few residents and many requests (downtown) would wash out the rest: the scale stops at the 90th
    # percentile, and the colour bar's arrow says so.
    top = max(values[int(0.9 * (len(values) - 1))] if values else 1.0, 1.0)

    def draw(ax: Axes) -> None:
        _draw_map(ax, frame, "per_1000", "rate_suppressed", f"Requests per 1,000 residents by tract, {period.label}",
                  "requests per 1,000 residents", "no requests", small_cell_min, extend="max", cmap="Blues",
                  vmin=0, vmax=top)

    return Chart("requests-per-1000-map", "Requests per 1,000 residents by census tract",
                 f"311 requests opened in {period.label} ({period.months}) per 1,000 residents (American "
                 "Community Survey population) of each 2020 census tract in Hamilton County.", draw, (5.6, 5.2),
                 "map")


def delay_map(tracts: Sequence[Tract], period: Period, small_cell_min: int) -> Chart:
    frame = _tract_frame(tracts)
    values = [t.median_delay for t in tracts if t.median_delay is not None]

    def draw(ax: Axes) -> None:
        _draw_map(ax, frame, "median_delay", "delay_suppressed", f"Median delay by tract, {period.label}",
                  "hours to close / type's citywide median", "no closed requests", small_cell_min,
                  cmap="RdYlBu_r", norm=TwoSlopeNorm(vmin=min([*values, 0.5]), vcenter=1.0,
                                                     vmax=max([*values, 1.5])))

    return Chart("median-delay-map", "Median delay by census tract",
                 f"For the requests closed in {period.label}: the median, per tract, of hours to close over the "
                 "request type's citywide median hours. Above 1 (red), the tract waits longer than usual for its "
                 "kind of request; below 1 (blue), less.", draw, (5.6, 5.2), "map")


def equity_chart(period_equity: Equity, all_time: Equity, period: Period) -> Chart:
    quintiles = [1, 2, 3, 4, 5]

    def draw(ax: Axes) -> None:
        for offset, (values, label, color) in enumerate(((period_equity, period.label, BLUE),
                                                         (all_time, "all years", GREY))):
            ax.bar([q - 0.2 + 0.4 * offset for q in quintiles],
                   [values.quintile_delay.get(q) or 0 for q in quintiles], width=0.4, color=color, label=label)
        ax.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
        ax.set_xticks(quintiles, ["1\nlowest income", "2", "3", "4", "5\nhighest income"])
        ax.set_ylabel("median delay ratio")
        ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.set_title("Delay by income quintile of the tract")

    return Chart("delay-by-income-quintile", "Delay by income quintile",
                 "Median, over the requests from each income quintile's tracts, of hours to close over the request "
                 "type's citywide median. The equity gap index is quintile 1's over quintile 5's.", draw)


def budget_chart(lines: Sequence[BudgetLine], period: Period, city: str, top: int = 15) -> Chart:
    expenses = [line for line in lines if line.line_type == "expense" and (line.budgeted or line.actual)][:top]

    def draw(ax: Axes) -> None:
        names = [line.department for line in expenses][::-1]
        y = range(len(names))
        colors = [GREEN if line.status == "favorable" else RED if line.status == "unfavorable" else GREY
                  for line in expenses][::-1]
        ax.barh([i + 0.2 for i in y], [(line.budgeted or 0) / 1e6 for line in expenses][::-1], height=0.4,
                color=BLUE)
        ax.barh([i - 0.2 for i in y], [(line.actual or 0) / 1e6 for line in expenses][::-1], height=0.4,
                color=colors)
        ax.set_yticks(list(y), names)
        note = "" if any(line.actual is not None for line in expenses) else \
            f"\n({city} published no actual expenses for {period.label})"
        ax.set_xlabel("million dollars" + note)
        ax.legend(handles=[Patch(color=BLUE, label="budgeted"), Patch(color=GREEN, label="actual, favorable"),
                           Patch(color=RED, label="actual, unfavorable")], frameon=False, fontsize=8,
                  loc="lower right")
        ax.set_title(f"Budget and actual expenses by department, {period.label}")

    return Chart("budget-by-department", "Budget and actual by department",
                 f"{city}'s operating budget and actual expenses by department (the {top} largest) in "
                 f"{period.label}; an actual is green under budget (favorable) and red over (unfavorable).", draw,
                 (6.4, 0.8 + 0.28 * max(len(expenses), 3)))
