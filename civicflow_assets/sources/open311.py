"""Open311 GeoReport v2 client: windowed, paged, deduplicated reads of service requests (JSON or XML)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from civicflow_assets.sources.http import SourceError, get, get_json, make_session, redact

FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

Record = dict[str, str | None]


class Open311Client:
    def __init__(
        self,
        base_url: str,
        *,
        jurisdiction_id: str | None = None,
        api_key: str | None = None,
        page_size: int = 100,
        window: timedelta = timedelta(days=30),
        fmt: str = "json",
        tz: str = "America/New_York",
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        if fmt not in ("json", "xml"):
            raise ValueError(f"fmt must be 'json' or 'xml', not {fmt!r}")
        if page_size < 1 or window <= timedelta(0):
            raise ValueError("page_size and window must be positive")
        self.base_url = base_url.rstrip("/")
        self.jurisdiction_id = jurisdiction_id
        self.api_key = api_key
        self.page_size = page_size
        self.window = window
        self.fmt = fmt
        self.tz = ZoneInfo(tz)
        self.session = session or make_session()
        self.timeout = timeout

    def services(self) -> list[dict[str, Any]]:
        url = f"{self.base_url}/services.{self.fmt}"
        if self.fmt == "xml":
            return [_element_value(el) for el in self._get_xml(url, self._base_params(), "service")]
        return _json_list(get_json(self.session, url, self._base_params(), self.timeout), url)

    def iter_requests(self, start: datetime, end: datetime) -> Iterator[Record]:
        """Requests the server lists for start_date/end_date windows over [start, end), each id once.

        Windows share their boundaries (GeoReport dates are inclusive), so an id seen twice keeps the
        version with the latest updated_datetime.
        """
        yield from self._collect(start, end, {})

    def iter_updated_since(
        self, cursor: datetime | None, now: datetime, *, lookback: timedelta = timedelta(days=90)
    ) -> Iterator[Record]:
        """Records updated strictly after `cursor` (all of the last `lookback` when there is none).

        start_date/end_date select by *requested* time, so the windows reach `lookback` before the
        cursor: a ticket opened earlier and closed since the last run must be re-read. Servers that
        know updated_after/updated_before (Chicago) filter on their side; for the rest we filter here.
        """
        since = self._aware(cursor) if cursor else None
        now = self._aware(now)
        start = (since or now) - lookback
        updated = {"updated_after": _iso(since or start), "updated_before": _iso(now)}
        for record in self._collect(start, now, updated):
            stamp = self.record_updated(record)
            if since is None or (stamp is not None and stamp > since):
                yield record

    def max_updated(self, records: Iterable[Record]) -> datetime | None:
        """The next cursor: the latest updated (or requested, when never updated) time among `records`."""
        return max(filter(None, map(self.record_updated, records)), default=None)

    def record_updated(self, record: Record) -> datetime | None:
        return self.parse_datetime(record["updated_datetime"] or record["requested_datetime"])

    def parse_datetime(self, value: str | None) -> datetime | None:
        """ISO 8601 with or without offset; naive ones (SF sends `2012-05-22 23:57:23.97`) are in `tz`."""
        if value is None:
            return None
        try:
            return self._aware(datetime.fromisoformat(value))
        except ValueError:
            raise SourceError(f"unparseable timestamp {value!r} from {self.base_url}") from None

    def _collect(self, start: datetime, end: datetime, extra_params: dict[str, str]) -> Iterator[Record]:
        # Buffer the whole call: a later page or window may carry a newer version of an id already seen.
        latest: dict[str, Record] = {}
        for record in self._fetch_windows(self._aware(start), self._aware(end), extra_params):
            key = record["service_request_id"]
            seen = latest.get(key)
            if seen is None or self._is_newer(record, seen):
                latest[key] = record
        yield from latest.values()

    def _fetch_windows(self, start: datetime, end: datetime, extra: dict[str, str]) -> Iterator[Record]:
        window_start = start
        while window_start < end:
            window_end = min(window_start + self.window, end)
            params = {"start_date": _iso(window_start), "end_date": _iso(window_end), **extra}
            yield from self._fetch_pages(params)
            window_start = window_end

    def _fetch_pages(self, params: dict[str, str]) -> Iterator[Record]:
        seen: set[str | None] = set()
        page = 1
        while True:
            records = self._fetch_page({**params, "page": str(page), "page_size": str(self.page_size)})
            ids = {record["service_request_id"] for record in records}
            if ids <= seen:
                # Empty, or a server that ignores `page` and repeats itself: either way nothing new.
                return
            seen |= ids
            yield from records
            if len(records) < self.page_size:
                return
            page += 1

    def _fetch_page(self, params: dict[str, str]) -> list[Record]:
        url = f"{self.base_url}/requests.{self.fmt}"
        query = {**self._base_params(), **params}
        if self.fmt == "xml":
            raw = [_element_value(el) for el in self._get_xml(url, query, "request")]
        else:
            raw = _json_list(get_json(self.session, url, query, self.timeout), url)
        return [_normalize(item, url) for item in raw]

    def _get_xml(self, url: str, params: dict[str, str], item_tag: str) -> list[ET.Element]:
        response = get(self.session, url, params, self.timeout)
        try:
            # Some servers emit a newline before `<?xml`, which expat rejects.
            root = ET.fromstring(response.content.lstrip())
        except ET.ParseError as exc:
            raise SourceError(f"malformed XML from {redact(response.url)}: {exc}") from None
        return [el for el in root.iter() if _local(el.tag) == item_tag]

    def _base_params(self) -> dict[str, str]:
        params = {"jurisdiction_id": self.jurisdiction_id, "api_key": self.api_key}
        return {name: value for name, value in params.items() if value}

    def _is_newer(self, candidate: Record, current: Record) -> bool:
        old = self.parse_datetime(current["updated_datetime"])
        new = self.parse_datetime(candidate["updated_datetime"])
        return old is None or (new is not None and new >= old)

    def _aware(self, moment: datetime) -> datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=self.tz)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_value(el: ET.Element) -> Any:
    """Text for a leaf (None for xsi:nil), else a dict of children; repeated tags become lists."""
    if el.get(_XSI_NIL) == "true":
        return None
    if len(el) == 0:
        return el.text
    children: dict[str, Any] = {}
    for child in el:
        name, value = _local(child.tag), _element_value(child)
        if name not in children:
            children[name] = value
        elif isinstance(children[name], list):
            children[name].append(value)
        else:
            children[name] = [children[name], value]
    return children


def _json_list(payload: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        raise SourceError(f"unexpected shape from {redact(url)}: expected a JSON list of objects")
    return payload


def _normalize(item: dict[str, Any], url: str) -> Record:
    """GeoReport fields as str/None, anything else as JSON text in `extra`.

    JSON servers send `null` or `""` and XML servers send an empty element for the same absent value,
    so blanks become None; numbers (Bloomington's integer `0` lat/long) become their text.
    """
    record: Record = {name: _text(item.get(name)) for name in FIELDS}
    if record["service_request_id"] is None:
        raise SourceError(f"unexpected shape from {redact(url)}: a request without service_request_id")
    extra = {name: value for name, value in item.items() if name not in FIELDS}
    record["extra"] = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None
    return record


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = value if isinstance(value, str) else json.dumps(value)
    return text if text.strip() else None
