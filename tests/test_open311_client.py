"""Open311 client and shared HTTP layer against recorded GeoReport v2 responses (see PROVENANCE.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from civicflow_assets.sources.http import SourceError, make_session, redact
from civicflow_assets.sources.open311 import FIELDS, Open311Client
from tests.replay_server import ReplayServer
from tests.shared_data import shared

CHICAGO = ZoneInfo("America/Chicago")
SHAPE = {*FIELDS, "extra"}


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


def make_client(server: ReplayServer, **options) -> Open311Client:
    options.setdefault("session", make_session(retries=3, backoff=0))
    options.setdefault("timeout", 5.0)
    return Open311Client(server.url, **options)


def chicago_records() -> list[dict]:
    return json.loads(
        shared("data", "api", "open311", "chicago_requests_extended_2014_extracted.json").read_bytes()
    )


def year_2014(client: Open311Client) -> list[dict]:
    return list(
        client.iter_requests(datetime(2014, 1, 1, tzinfo=CHICAGO), datetime(2015, 1, 1, tzinfo=CHICAGO))
    )


def test_json_pages_are_walked_until_a_short_page(server: ReplayServer) -> None:
    records = chicago_records()
    for number in (1, 2, 3):
        page = records[(number - 1) * 20 : number * 20]
        server.add("/requests.json", json.dumps(page).encode(), match=lambda q, n=number: q["page"] == str(n))
    client = make_client(server, page_size=20, window=timedelta(days=365))

    got = year_2014(client)

    assert len(got) == 50
    assert len({r["service_request_id"] for r in got}) == 50
    assert [q["page"] for _, q in server.requests] == ["1", "2", "3"]
    assert {q["page_size"] for _, q in server.requests} == {"20"}
    assert server.requests[0][1]["start_date"] == "2014-01-01T00:00:00-06:00"
    assert server.requests[0][1]["end_date"] == "2015-01-01T00:00:00-06:00"
    assert all(set(r) == SHAPE for r in got)
    offsets = {client.parse_datetime(r["requested_datetime"]).utcoffset() for r in got}
    assert offsets == {timedelta(hours=-5), timedelta(hours=-6)}
    extras = [json.loads(r["extra"]) for r in got]
    assert sum(len(extra["notes"]) for extra in extras) == 276
    assert extras[0]["attributes"] == {"WHEREIST": "TRAFFIC"}
    assert extras[0]["extended_attributes"]["ward"] == "21"
    assert got[0]["lat"] == "41.74685764200721"


def test_windows_cover_the_range_half_open(server: ReplayServer) -> None:
    server.add("/requests.json", b"[]")
    client = make_client(server, window=timedelta(days=30))

    assert list(client.iter_requests(datetime(2014, 1, 1), datetime(2014, 3, 1))) == []

    windows = [(q["start_date"], q["end_date"]) for _, q in server.requests]
    assert windows == [
        ("2014-01-01T00:00:00-05:00", "2014-01-31T00:00:00-05:00"),
        ("2014-01-31T00:00:00-05:00", "2014-03-01T00:00:00-05:00"),
    ]


def test_duplicates_across_windows_keep_the_latest_update(server: ReplayServer) -> None:
    first, second = chicago_records()[:2]
    stale = {**first, "updated_datetime": "2014-06-01T00:00:00-05:00", "status": "open"}
    server.add("/requests.json", json.dumps([stale]).encode(), match=lambda q: q["start_date"] < "2014-07")
    server.add("/requests.json", json.dumps([first, second]).encode())
    client = make_client(server, window=timedelta(days=200))

    got = year_2014(client)

    assert len(server.requests) == 2
    assert [r["service_request_id"] for r in got] == [
        first["service_request_id"],
        second["service_request_id"],
    ]
    assert got[0]["status"] == "closed"
    assert got[0]["updated_datetime"] == first["updated_datetime"]


def test_a_server_that_ignores_page_is_not_paged_forever(server: ReplayServer) -> None:
    server.add("/requests.json", json.dumps(chicago_records()[:20]).encode())
    client = make_client(server, page_size=20, window=timedelta(days=365))

    assert len(year_2014(client)) == 20
    assert [q["page"] for _, q in server.requests] == ["1", "2"]


def test_bloomington_json_nulls_integer_zeros_and_crlf(server: ReplayServer) -> None:
    server.add(
        "/requests.json",
        shared("data", "api", "open311", "bloomington_in_requests_2012-05-23.json").read_bytes(),
    )
    client = make_client(server)

    got = list(client.iter_requests(datetime(2012, 5, 22), datetime(2012, 5, 24)))

    assert len(got) == 21
    assert all(set(r) == SHAPE and r["extra"] is None for r in got)
    assert all(value is None or isinstance(value, str) for r in got for value in r.values())
    assert all(r["address_id"] is None for r in got)
    assert sum(r["zipcode"] is None for r in got) == 16  # ten null, six "" alike
    assert sum(r["media_url"] is None for r in got) == 20
    assert sum(r["lat"] == "0" and r["long"] == "0" for r in got) == 6
    assert sum(r["lat"] is None for r in got) == 2
    assert "\r\n\r\nThanks." in got[0]["description"]
    assert sum(r["description"] is None for r in got) == 4  # one null, three ""


def test_sf_xml_nil_naive_timestamps_and_namespaces(server: ReplayServer) -> None:
    server.add("/requests.xml", shared("data", "api", "open311", "sf_requests_2012-05-22.xml").read_bytes())
    client = make_client(server, fmt="xml", tz="America/Los_Angeles")

    got = list(client.iter_requests(datetime(2012, 5, 22), datetime(2012, 5, 23)))

    assert len(got) == 56
    assert all(set(r) == SHAPE and r["extra"] is None for r in got)
    assert sum(r["updated_datetime"] is None for r in got) == 52
    assert sum(r["expected_datetime"] is None for r in got) == 16
    assert sum(r["zipcode"] == "0" for r in got) == 9
    assert got[0]["requested_datetime"] == "2012-05-22 23:57:23.97"
    assert client.parse_datetime(got[0]["requested_datetime"]) == datetime(
        2012, 5, 22, 23, 57, 23, 970000, tzinfo=ZoneInfo("America/Los_Angeles")
    )
    assert all(client.parse_datetime(r["requested_datetime"]).utcoffset() == timedelta(hours=-7) for r in got)
    assert client.max_updated(got) == client.parse_datetime("2012-05-22 23:57:23.97")


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("sf_services_2010-11.xml", "xml", 36),  # newline before <?xml
        ("sf_services_2012-05.xml", "xml", 38),
        ("bloomington_in_services_2012-05.json", "json", 46),
    ],
)
def test_services(server: ReplayServer, name: str, fmt: str, count: int) -> None:
    server.add(f"/services.{fmt}", shared("data", "api", "open311", name).read_bytes())

    services = make_client(server, fmt=fmt).services()

    assert len(services) == count
    assert all(service["service_code"] for service in services)


def test_xml_service_descriptions_keep_their_trailing_newline(server: ReplayServer) -> None:
    server.add("/services.xml", shared("data", "api", "open311", "sf_services_2010-11.xml").read_bytes())

    services = make_client(server, fmt="xml").services()

    assert sum(s["description"].endswith("\n") for s in services) == 28
    assert services[0]["keywords"] is None


def test_429_with_retry_after_is_retried(server: ReplayServer) -> None:
    server.add("/requests.json", b"slow down", status=429, headers={"Retry-After": "0"}, times=1)
    server.add("/requests.json", json.dumps(chicago_records()).encode())

    assert len(year_2014(make_client(server, window=timedelta(days=365)))) == 50
    assert len(server.requests) == 2


def test_503_twice_then_success(server: ReplayServer) -> None:
    server.add("/requests.json", b"busy", status=503, times=2)
    server.add("/requests.json", json.dumps(chicago_records()).encode())

    assert len(year_2014(make_client(server, window=timedelta(days=365)))) == 50
    assert len(server.requests) == 3


def test_read_timeout_is_retried(server: ReplayServer) -> None:
    body = json.dumps(chicago_records()).encode()
    server.add("/requests.json", body, delay=1.0, times=1)
    server.add("/requests.json", body)

    assert len(year_2014(make_client(server, window=timedelta(days=365), timeout=0.2))) == 50
    assert len(server.requests) == 2


def test_malformed_json_names_the_url_without_the_key(server: ReplayServer) -> None:
    server.add("/requests.json", b'[{"service_request_id": ')
    client = make_client(server, api_key="s3cret", window=timedelta(days=365))

    with pytest.raises(SourceError, match="malformed JSON") as caught:
        year_2014(client)

    message = str(caught.value)
    assert f"malformed JSON from {server.url}/requests.json?" in message
    assert "api_key=***" in message and "page=1" in message
    assert "s3cret" not in message


def test_malformed_xml(server: ReplayServer) -> None:
    server.add("/requests.xml", b"<service_requests><request>")

    with pytest.raises(SourceError, match=r"malformed XML from http://127\.0\.0\.1:\d+/requests\.xml\?"):
        year_2014(make_client(server, fmt="xml", window=timedelta(days=365)))


def test_persistent_500_reports_status_and_attempts(server: ReplayServer) -> None:
    server.add("/requests.json", b"internal error", status=500)

    with pytest.raises(SourceError, match=r"HTTP 500 from .* after 4 attempt\(s\): 'internal error'"):
        year_2014(make_client(server, window=timedelta(days=365)))
    assert len(server.requests) == 4


def test_client_error_is_not_retried_and_quotes_the_body(server: ReplayServer) -> None:
    error = shared("data", "api", "open311", "boston_error_post_duplicate.xml").read_bytes()
    server.add("/requests.xml", error, status=400)

    with pytest.raises(SourceError, match="HTTP 400") as caught:
        year_2014(make_client(server, fmt="xml", window=timedelta(days=365)))
    assert "<errors>" in str(caught.value)
    assert len(server.requests) == 1


def test_exhausted_retries_from_a_raising_session(server: ReplayServer) -> None:
    session = requests.Session()
    retry = Retry(total=2, status_forcelist=[503], backoff_factor=0, raise_on_status=True)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    server.add("/requests.json", b"busy", status=503)

    with pytest.raises(SourceError, match="after 3 attempts: too many 503 error responses") as caught:
        year_2014(make_client(server, session=session, api_key="s3cret", window=timedelta(days=365)))
    assert "s3cret" not in str(caught.value)
    assert len(server.requests) == 3


def test_unreachable_server_is_a_source_error_without_the_key() -> None:
    with ReplayServer() as gone:
        pass  # closed: its port now refuses connections

    with pytest.raises(
        SourceError, match=r"request to http://127\.0\.0\.1:\d+/requests\.json\?.* failed"
    ) as caught:
        year_2014(make_client(gone, api_key="s3cret", window=timedelta(days=365)))
    assert "s3cret" not in str(caught.value)


def test_updated_since_cursor_yields_only_newer_records(server: ReplayServer) -> None:
    server.add("/requests.json", json.dumps(chicago_records()).encode())  # a server that ignores updated_*
    client = make_client(server)
    cursor = datetime(2015, 10, 1, tzinfo=CHICAGO)
    now = datetime(2015, 10, 11, tzinfo=CHICAGO)

    got = list(client.iter_updated_since(cursor, now))

    assert len(got) == 36
    assert all(client.record_updated(r) > cursor for r in got)
    first = server.requests[0][1]
    assert first["updated_after"] == "2015-10-01T00:00:00-05:00"
    assert first["updated_before"] == "2015-10-11T00:00:00-05:00"
    assert first["start_date"] == "2015-07-03T00:00:00-05:00"  # lookback before the cursor
    assert server.requests[-1][1]["end_date"] == "2015-10-11T00:00:00-05:00"
    new_cursor = client.max_updated(got)
    assert new_cursor == datetime(2015, 10, 10, 10, 15, 40, tzinfo=CHICAGO)
    assert list(client.iter_updated_since(new_cursor, now)) == []


def test_updated_since_without_cursor_takes_the_lookback(server: ReplayServer) -> None:
    server.add("/requests.json", json.dumps(chicago_records()).encode())
    client = make_client(server)
    now = datetime(2015, 10, 11, tzinfo=CHICAGO)

    got = list(client.iter_updated_since(None, now, lookback=timedelta(days=10)))

    assert len(got) == 50
    assert (
        server.requests[0][1]["start_date"]
        == server.requests[0][1]["updated_after"]
        == "2015-10-01T00:00:00-05:00"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/r.json?api_key=abc&page=2", "http://h/r.json?api_key=***&page=2"),
        ("http://h/data/2019/pep?get=POP&key=abc", "http://h/data/2019/pep?get=POP&key=***"),
        ("http://h/r.json?$$app_token=abc", "http://h/r.json?$$app_token=***"),
        ("http://h/r.json?%24%24app_token=abc&x=1", "http://h/r.json?%24%24app_token=***&x=1"),
        ("http://h/r.json?monkey=abc", "http://h/r.json?monkey=abc"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected
