"""Census Data API client: header-plus-rows JSON into dicts, with ACS annotation sentinels explained."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests

from civicflow_assets.sources.http import SourceError, get_json, make_session, redact

# Numeric stand-ins the API puts in estimate/MOE cells, from the Census Bureau's
# "Notes on ACS Estimate and Annotation Values" (annotation symbol in brackets).
SENTINELS: dict[str, str] = {
    "-999999999": "estimate or margin of error cannot be displayed: too few sample cases in the area [N]",
    "-888888888": "estimate or margin of error is not applicable or not available [(X)]",
    "-666666666": "estimate could not be computed: insufficient sample observations, or a median/ratio in an "
    "open-ended interval [-]",
    "-555555555": "margin of error not appropriate: estimate is controlled to an independent estimate, "
    "treat the margin of error as zero [*****]",
    "-333333333": "margin of error could not be computed: median falls in an open-ended interval [***]",
    "-222222222": "margin of error could not be computed: insufficient sample observations [**]",
}
# Some datasets send the sentinels as floats ("-666666666.0").
_SENTINEL = re.compile(r"(-\d{9})(?:\.0+)?")
# One `name:value` predicate; names may hold spaces ("metropolitan statistical area/..."), values may not.
_PREDICATE = re.compile(r"([^:+]+?):([^\s+]+)")


class CensusClient:
    def __init__(
        self,
        base_url: str = "https://api.census.gov/data",
        *,
        api_key: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session = session or make_session()
        self.timeout = timeout

    def fetch(
        self, year: int, dataset: str, variables: list[str], geo_for: str, geo_in: str | None = None
    ) -> list[dict[str, str | None]]:
        """Rows as dicts keyed by the response header; [] when the API answers 204 (no matching rows)."""
        url = f"{self.base_url}/{year}/{dataset.strip('/')}"
        query = self._query(variables, geo_for, geo_in)
        payload = get_json(self.session, url, query, self.timeout)
        if payload is None:
            return []
        return _rows(payload, redact(f"{url}?{query}"))

    def _query(self, variables: list[str], geo_for: str, geo_in: str | None) -> str:
        """Build the query by hand: requests would send a `+` in `in=` as `%2B`, a literal plus.

        The API's own examples join `in` predicates with `+` (a form-encoded space), so we send exactly
        that, whether the caller wrote `state:47+county:065` or `state:47 county:065`; spaces inside a
        geography name go as `%20`.
        """
        parts = [f"get={quote(','.join(variables), safe=',()')}", f"for={_geo_clause(geo_for)}"]
        if geo_in:
            parts.append(f"in={_geo_clause(geo_in)}")
        if self.api_key:
            parts.append(f"key={quote(self.api_key, safe='')}")
        return "&".join(parts)


def clean_value(value: str | None) -> tuple[str | None, str | None]:
    """(value, None) for data; (None, "sentinel <code>: <meaning>") for annotations; (None, None) if blank."""
    if value is None or not value.strip():
        return None, None
    match = _SENTINEL.fullmatch(value.strip())
    if match and match.group(1) in SENTINELS:
        code = match.group(1)
        return None, f"sentinel {code}: {SENTINELS[code]}"
    return value, None


def estimate_moe_pairs(variables: Iterable[str]) -> list[tuple[str, str]]:
    """(estimate, margin of error) pairs present in `variables`: B01001_001E/B01001_001M, DP02_0001PE/PM."""
    names = list(variables)
    present = set(names)
    return [(name, name[:-1] + "M") for name in names if name.endswith("E") and name[:-1] + "M" in present]


def _geo_clause(clause: str) -> str:
    predicates = _PREDICATE.findall(clause)
    if not predicates:
        raise ValueError(f"geography clause {clause!r} is not of the form name:value[+name:value...]")
    return "+".join(
        f"{quote(name.strip(), safe='/')}:{quote(value, safe='*,')}" for name, value in predicates
    )


def _rows(payload: Any, where: str) -> list[dict[str, str | None]]:
    if not (isinstance(payload, list) and payload and all(isinstance(row, list) for row in payload)):
        raise SourceError(f"unexpected shape from {where}: expected a JSON array of arrays with a header row")
    header, *rows = payload
    if not all(isinstance(name, str) for name in header):
        raise SourceError(f"unexpected shape from {where}: header row {header!r} is not all strings")
    records = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise SourceError(
                f"unexpected shape from {where}: row {number} has {len(row)} values, header has {len(header)}"
            )
        records.append(dict(zip(header, (_cell(value, where) for value in row), strict=True)))
    return records


def _cell(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise SourceError(f"unexpected shape from {where}: cell {value!r} is not a string, number or null")
