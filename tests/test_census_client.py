"""Census client against recorded Data API responses (see PROVENANCE.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from civicflow_assets.sources.census import SENTINELS, CensusClient, clean_value, estimate_moe_pairs
from civicflow_assets.sources.http import SourceError, make_session
from tests.replay_server import ReplayServer
from tests.shared_data import shared

PEP_PATH = "/data/2019/pep/population"
PEP_VARIABLES = ["LASTUPDATE", "POP", "DENSITY"]
NY_PATH = "/data/2020/pdb/tract"
NY_VARIABLE = "pct_US_Cit_Nat_ACSMOE_16_20"


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def client(server: ReplayServer) -> CensusClient:
    return CensusClient(f"{server.url}/data", api_key="test-key", session=make_session(retries=2, backoff=0))


def census_file(name: str) -> bytes:
    return shared("data", "api", "census", name).read_bytes()


def ny_tracts() -> list[list[str | None]]:
    return json.loads(census_file("pdb_tract_ny_pct_US_Cit_Nat_ACSMOE_16_20.json"))


def fetch_ny(client: CensusClient) -> list[dict[str, str | None]]:
    return client.fetch(2020, "pdb/tract", [NY_VARIABLE], "tract:*", "state:36")


def test_pep_counties(server: ReplayServer, client: CensusClient) -> None:
    server.add(PEP_PATH, census_file("pep_2019_population_county_all.json"))

    rows = client.fetch(2019, "pep/population", PEP_VARIABLES, "county:*", "state:*")

    assert len(rows) == 3220
    assert set(rows[0]) == {*PEP_VARIABLES, "state", "county"}
    hamilton = next(r for r in rows if (r["state"], r["county"]) == ("47", "065"))
    assert hamilton["POP"] == "367804"
    no_density = [r for r in rows if r["DENSITY"] is None]
    assert len(no_density) == 78
    assert {r["state"] for r in no_density} == {"72"}
    assert server.requests == [
        (PEP_PATH, {"get": "LASTUPDATE,POP,DENSITY", "for": "county:*", "in": "state:*", "key": "test-key"})
    ]
    assert server.targets == [f"{PEP_PATH}?get=LASTUPDATE,POP,DENSITY&for=county:*&in=state:*&key=test-key"]


@pytest.mark.parametrize("geo_in", ["state:47+county:065", "state:47 county:065", " state:47  county:065 "])
def test_in_clause_goes_out_with_a_literal_plus(
    server: ReplayServer, client: CensusClient, geo_in: str
) -> None:
    header, *rows = json.loads(census_file("pep_2019_population_county_all.json"))
    hamilton = [row for row in rows if row[3:] == ["47", "065"]]
    server.add("/data/2019/acs/acs5", json.dumps([header, *hamilton]).encode())

    got = client.fetch(2019, "acs/acs5", PEP_VARIABLES, "county:065", geo_in)

    assert [r["POP"] for r in got] == ["367804"]
    assert "&in=state:47+county:065&" in server.targets[0]
    assert server.requests[0][1]["in"] == "state:47 county:065"  # what the server decodes


def test_geography_names_with_spaces_are_percent_encoded(server: ReplayServer, client: CensusClient) -> None:
    server.add("/data/2019/acs/acs5", b'[["NAME"]]')

    client.fetch(2019, "acs/acs5", ["NAME"], "metropolitan statistical area/micropolitan statistical area:*")

    assert "for=metropolitan%20statistical%20area/micropolitan%20statistical%20area:*" in server.targets[0]


def test_ny_tracts_with_nulls(server: ReplayServer, client: CensusClient) -> None:
    server.add(NY_PATH, census_file("pdb_tract_ny_pct_US_Cit_Nat_ACSMOE_16_20.json"))

    rows = fetch_ny(client)

    assert len(rows) == 5411
    assert len({r["county"] for r in rows}) == 62
    cleaned = [clean_value(r[NY_VARIABLE]) for r in rows]
    assert cleaned.count((None, None)) == 107
    assert cleaned[0] == ("3.79", None)


def test_sentinels_in_a_real_response_are_explained(server: ReplayServer, client: CensusClient) -> None:
    header, *rows = ny_tracts()
    planted = ["-666666666", "-999999999", "-888888888.0", "-555555555", "-333333333", "-222222222"]
    for row, sentinel in zip(rows, planted, strict=False):
        row[0] = sentinel
    server.add(NY_PATH, json.dumps([header, *rows]).encode())

    cleaned = [clean_value(r[NY_VARIABLE]) for r in fetch_ny(client)]

    for (value, reason), sentinel in zip(cleaned, planted, strict=False):
        code = sentinel.removesuffix(".0")
        assert value is None
        assert reason == f"sentinel {code}: {SENTINELS[code]}"
    assert cleaned[1][1].startswith("sentinel -999999999: estimate or margin of error cannot be displayed")
    assert cleaned[0][1].startswith("sentinel -666666666: estimate could not be computed")
    assert cleaned[len(planted)] == (rows[len(planted)][0], None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (None, None)),
        ("", (None, None)),
        ("0", ("0", None)),
        ("-6", ("-6", None)),
        ("-666666666.00", (None, f"sentinel -666666666: {SENTINELS['-666666666']}")),
        ("-123456789", ("-123456789", None)),
    ],
)
def test_clean_value(value: str | None, expected: tuple[str | None, str | None]) -> None:
    assert clean_value(value) == expected


def test_row_length_mismatch(server: ReplayServer, client: CensusClient) -> None:
    header, *rows = ny_tracts()
    rows[1] = rows[1][:-1]
    server.add(NY_PATH, json.dumps([header, *rows]).encode())

    with pytest.raises(SourceError, match="row 2 has 3 values, header has 4") as caught:
        fetch_ny(client)
    assert f"{server.url}{NY_PATH}?get={NY_VARIABLE}" in str(caught.value)
    assert "test-key" not in str(caught.value)


@pytest.mark.parametrize("body", [b'{"error": "nope"}', b"[]", b'["a", "b"]', b'[["a", 1], [{"x": 1}, "b"]]'])
def test_unexpected_shapes(server: ReplayServer, client: CensusClient, body: bytes) -> None:
    server.add(NY_PATH, body)

    with pytest.raises(SourceError, match="unexpected shape"):
        fetch_ny(client)


def test_unknown_variable_error_quotes_the_server(server: ReplayServer, client: CensusClient) -> None:
    server.add(NY_PATH, b"error: unknown variable 'NOPE'", status=400)

    with pytest.raises(SourceError, match=r"HTTP 400 .*unknown variable 'NOPE'") as caught:
        fetch_ny(client)
    assert "key=***" in str(caught.value) and "test-key" not in str(caught.value)
    assert len(server.requests) == 1


def test_no_content_is_no_rows(server: ReplayServer, client: CensusClient) -> None:
    server.add(NY_PATH, b"", status=204)

    assert fetch_ny(client) == []


def test_estimate_moe_pairs_from_a_real_group() -> None:
    names = list(json.loads(census_file("acs5_group_B17015_variables.json"))["variables"])

    pairs = estimate_moe_pairs(["NAME", *names])

    assert len(pairs) == 47
    assert ("B17015_001E", "B17015_001M") in pairs
    assert all(m == e[:-1] + "M" and e.endswith("E") for e, m in pairs)


def test_estimate_moe_pairs_needs_both_halves() -> None:
    assert estimate_moe_pairs(
        ["B01001_001E", "B01001_002E", "B01001_001M", "DP02_0001PE", "DP02_0001PM"]
    ) == [
        ("B01001_001E", "B01001_001M"),
        ("DP02_0001PE", "DP02_0001PM"),
    ]
