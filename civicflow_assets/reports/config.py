"""reports.yaml as typed settings: what the reports cover and the CKAN datasets they go to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

REPORTS_PATH = Path(__file__).with_name("reports.yaml")
OUTPUTS = ("report", "index", "department_scorecards", "district_scorecards")


class ReportsConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Output:
    """One CKAN dataset the reports publish."""

    ckan_name: str
    title: str
    description: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportsConfig:
    city: str
    periods: int
    fiscal_year_start_month: int
    trend_months: int
    owner: str  # P1, of the datasets the reports publish
    outputs: dict[str, Output]
    small_cell_min: int  # PII3, from checks/settings.yaml: counts below it are not shown

    def output(self, name: str) -> Output:
        return self.outputs[name]

    def renamed(self, prefix: str) -> ReportsConfig:
        """The same reports under other CKAN names (tests publish beside the real datasets)."""
        outputs = {k: dataclasses.replace(v, ckan_name=f"{prefix}-{v.ckan_name}") for k, v in self.outputs.items()}
        return dataclasses.replace(self, outputs=outputs)


def load_reports_config(path: Path = REPORTS_PATH, small_cell_min: int | None = None) -> ReportsConfig:
    raw = yaml.safe_load(path.read_text()) or {}
    declared = raw.get("datasets") or {}
    missing = [name for name in OUTPUTS if name not in declared]
    if missing:
        raise ReportsConfigError(f"{path}: datasets {missing} are not declared")
    if small_cell_min is None:
        from civicflow_assets.checks.config import load_check_settings

        small_cell_min = load_check_settings().small_cell_min
    config = ReportsConfig(
        city=str(raw["city"]),
        periods=int(raw.get("periods", 3)),
        fiscal_year_start_month=int(raw.get("fiscal_year_start_month", 7)),
        trend_months=int(raw.get("trend_months", 24)),
        owner=str(raw["owner"]),
        outputs={name: Output(d["ckan_name"], d["title"], " ".join(d["description"].split()),
                              tuple(str(t) for t in d.get("tags") or ())) for name, d in declared.items()},
        small_cell_min=small_cell_min,
    )
    if config.periods < 1 or not 1 <= config.fiscal_year_start_month <= 12 or config.trend_months < 2:
        raise ReportsConfigError(f"{path}: periods >= 1, fiscal_year_start_month 1-12 and trend_months >= 2")
    return config
