"""Transparency reports, scorecards and the transparency index, published to CKAN (definitions_part.build_reports).

`build_reports` is imported lazily, so that using the report modules does not pay for importing Dagster.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("build_reports", "ReportsDefinitions"):
        from civicflow_assets.reports import definitions_part

        return getattr(definitions_part, name)
    raise AttributeError(name)
