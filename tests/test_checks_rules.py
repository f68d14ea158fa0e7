"""Each rule on a small published table: passes on clean data, fails on data broken on purpose, and a failed
blocking rule stops the stand-in publication step downstream (Dagster skips it); a warning rule does not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from dagster import AssetKey, MaterializeResult, asset, materialize

from civicflow_assets.checks import build_checks, load_check_settings, load_datasets
from civicflow_assets.checks.config import CheckSettings, Rule
from civicflow_assets.database import PostgresResource
from tests.conftest import scalar

FIXTURE_DATASETS = """
datasets:
  fixture_requests:
    title: Fixture requests
    owner: Test owner
    update_frequency: never
    publication: manual
    grain: record
    source_model: none
    published_table: publish.pub_fixture_requests
    id_fields: [RequestId]
    coded_fields: {StatusCode: Status}
    timestamp_fields: [CreatedDate, ModifiedDate]
    created_field: CreatedDate
    modified_field: ModifiedDate
    required_fields: [RequestId, RequestType, CreatedDate]
    ranges: {HoursToClose: {min: 0}}
    free_text_fields: [Description]
    request_type_field: RequestType
    location: {geometry: GeneralizedLocation}
  fixture_levels:
    title: Fixture levels
    owner: Test owner
    update_frequency: never
    publication: manual
    grain: aggregate
    source_model: none
    published_table: publish.pub_fixture_levels
    required_fields: [RequestType]
    count_fields:
      RequestsOpened: {dependents: [MedianHoursToClose]}
    waivers:
      U2: Aggregate rows are recomputed from the request records on every run; they have no life of their own.
"""

COLUMNS = ('"RequestId"', '"StatusCode"', '"Status"', '"RequestType"', '"Description"', '"CreatedDate"',
           '"ModifiedDate"', '"HoursToClose"', '"GeneralizedLocation"')
CLEAN_ROWS = [
    "('test:1', 'O-CLOSED', 'closed', 'Potholes', 'Pothole by the school', '2024-03-01 09:30-05'::timestamptz,"
    " '2024-03-02 10:00-05'::timestamptz, 24.5::float8, st_setsrid(st_makepoint(-85.3091234, 35.0471234), 4326))",
    "('test:2', 'O-OPEN', 'open', 'Bad Odor Complaint', 'Sewer smell near the school', '2024-03-03 08:00-05',"
    " '2024-03-03 08:00-05', null, st_setsrid(st_makepoint(-85.309, 35.047), 4326))",
    "('test:3', null, 'other', 'Sidewalks', null, '2024-03-04 08:00-05', '2024-03-05 08:00-05', 0,"
    " null)",
]
BROKEN_ROWS = {
    "C2": "('test:1', 'CLOSED', null, 'Potholes', 'again', '2024-03-01 09:30-05', '2024-03-02 10:00-05', 1, null)",
    "U2": "('test:9', 'O-NEW', 'open', 'Potholes', 'x', '2024-03-05 09:30-05', '2024-03-04 10:00-05', null, null)",
    "PII1": "('test:9', 'O-NEW', 'open', 'Potholes', 'call me at 423-555-0134', '2024-03-05 09:30-05',"
            " '2024-03-05 09:30-05', null, null)",
    "PII1_email": "('test:9', 'O-NEW', 'open', 'Potholes', 'write to jane.doe+311@example.org', '2024-03-05 09:30-05',"
                  " '2024-03-05 09:30-05', null, null)",
    "PII2_home": "('test:9', 'O-NEW', 'open', 'Potholes', 'I live at 1432 Oak St', '2024-03-05 09:30-05',"
                 " '2024-03-05 09:30-05', null, null)",
    "PII2": "('test:9', 'O-NEW', 'open', 'Bad Odor Complaint', 'smells', '2024-03-05 09:30-05', '2024-03-05 09:30-05',"
            " null, st_setsrid(st_makepoint(-85.3091234, 35.0471234), 4326))",
    "PII4": "('test:9', 'O-NEW', 'open', 'Welfare Check', 'neighbor not seen', '2024-03-05 09:30-05',"
            " '2024-03-05 09:30-05', null, null)",
    "Q1": "('test:9', 'O-NEW', 'open', null, 'no type', '2024-03-05 09:30-05', '2024-03-05 09:30-05', null, null)",
    "Q2": "('test:9', 'O-CLOSED', 'closed', 'Potholes', 'x', '2024-03-05 09:30-05', '2024-03-05 09:30-05', -3, null)",
}
# The value each broken row carries that no check result may repeat.
BROKEN_VALUES = {"PII1": "423-555-0134", "PII1_email": "jane.doe+311@example.org", "PII2_home": "1432 Oak St",
                 "PII2": "-85.3091234", "PII4": "neighbor not seen"}

LEVELS_CLEAN = ("select * from (values ('Potholes', 12::bigint, 30.5::float8, false),"
                " ('Welfare Check', null, null, true))"
                ' as t("RequestType", "RequestsOpened", "MedianHoursToClose", "RequestsOpenedSuppressed")')
LEVELS_BROKEN = LEVELS_CLEAN.replace("('Welfare Check', null, null, true)", "('Welfare Check', 3, 2.0, false)")


def requests_sql(rows: list[str], columns: tuple[str, ...] = COLUMNS, wrap: str = "{}") -> str:
    values = "select * from (values " + ", ".join(rows) + f") as t({', '.join(columns)})"
    return wrap.format(values)


@pytest.fixture(scope="module")
def settings() -> CheckSettings:
    return load_check_settings()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, settings):
    path = tmp_path_factory.mktemp("datasets") / "datasets.yaml"
    path.write_text(FIXTURE_DATASETS)
    return load_datasets(path, settings)


def _published_asset(table: str, sql: str):
    @asset(key=["publish", table])
    def _published(postgres: PostgresResource) -> MaterializeResult:
        with postgres.connection() as conn, conn.cursor() as cur:
            cur.execute(f"create schema if not exists publish; drop table if exists publish.{table};"
                        f" create table publish.{table} as {sql}")
        return MaterializeResult()

    return _published


@asset(deps=[AssetKey(["publish", "pub_fixture_requests"])])
def publication_of_requests() -> None:
    """Stands in for the publication step: it must not run after a blocking check failed."""


@asset(deps=[AssetKey(["publish", "pub_fixture_levels"])])
def publication_of_levels() -> None:
    """Stands in for the publication step of the aggregate."""


def run_checks(warehouse_url, datasets, settings, docs, name: str, sql: str):
    publication = publication_of_requests if name == "fixture_requests" else publication_of_levels
    table = datasets[name].table
    result = materialize(
        [_published_asset(table, sql), publication, *build_checks({name: datasets[name]}, settings, docs)],
        resources={"postgres": PostgresResource(url=warehouse_url)},
        raise_on_error=False,
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    published = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    return result, checks, publication.key.to_user_string() in published


RULE_CHECKS = {"C2": "c2_coded_fields_described", "C4": "c4_camel_case_names", "F5": "f5_timestamps_zoned",
               "U2": "u2_created_and_modified", "PII1": "pii1_no_personal_data",
               "PII2": "pii2_locations_generalized", "PII3": "pii3_small_cells_suppressed",
               "PII4": "pii4_sensitive_types_withheld", "Q1": "q1_required_fields_complete",
               "Q2": "q2_values_in_range"}


def test_clean_record_dataset_passes_every_rule_and_publishes(warehouse_url, datasets, settings, tmp_path) -> None:
    result, checks, published = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_requests",
                                           requests_sql(CLEAN_ROWS))
    assert result.success and published
    assert set(checks) == {RULE_CHECKS[r] for r in ("C2", "C4", "F5", "U2", "PII1", "PII2", "PII4", "Q1", "Q2")}
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]
    pii1 = checks["pii1_no_personal_data"].metadata
    assert pii1["rules"].value == "PII1, PII5"
    assert Path(pii1["data_docs"].value).is_file()


def test_clean_aggregate_passes_and_its_waiver_is_published_with_the_check(warehouse_url, datasets, settings,
                                                                              tmp_path) -> None:
    result, checks, published = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_levels",
                                           LEVELS_CLEAN)
    assert result.success and published
    assert all(c.passed for c in checks.values())
    assert "recomputed" in checks["u2_created_and_modified"].metadata["waived"].value


BROKEN = {
    "C2": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["C2"]]),
    "C4": requests_sql(CLEAN_ROWS, wrap='select *, 1 as "request notes", 2 as requestNotes from ({}) as t'),
    "F5": requests_sql(CLEAN_ROWS, wrap='select t.*, "CreatedDate"::timestamp as "LocalDate" from ({}) as t'),
    "U2": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["U2"]]),
    "PII1": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["PII1"]]),
    "PII1_email": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["PII1_email"]]),
    "PII2_home": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["PII2_home"]]),
    "PII2": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["PII2"]]),
    "PII4": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["PII4"]]),
    "Q1": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["Q1"]]),
    "Q2": requests_sql([*CLEAN_ROWS, BROKEN_ROWS["Q2"]]),
}
EXPECTED_FIELDS = {"C2": {"RequestId": 2, "Status": 1}, "C4": {"request notes": 1, "requestnotes": 1},
                   "F5": {"LocalDate": 1}, "U2": {"ModifiedDate": 1}, "PII1": {"Description": 1},
                   "PII1_email": {"Description": 1}, "PII2_home": {"Description": 1},
                   "PII2": {"GeneralizedLocation": 1}, "PII4": {"RequestType": 1}, "Q1": {"RequestType": 1},
                   "Q2": {"HoursToClose": 1}}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_fails_on_broken_data(case, warehouse_url, datasets, settings, tmp_path, conn) -> None:
    rule = case.split("_")[0]
    result, checks, published = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_requests",
                                           BROKEN[case])
    failed = {name for name, c in checks.items() if not c.passed}
    assert failed == {RULE_CHECKS[rule]}
    check = checks[RULE_CHECKS[rule]]
    assert check.metadata["failing_by_field"].value == EXPECTED_FIELDS[case]
    assert check.metadata["failing_count"].value == sum(EXPECTED_FIELDS[case].values())
    assert rule in check.metadata["rules"].value
    blocking = settings.rules[rule].blocking
    assert check.blocking == blocking
    # A blocking failure fails the run and Dagster skips the publication downstream; a warning publishes.
    assert published is not blocking
    assert result.success is not blocking
    # The failure says which dataset, field and rule, and how many values, never the values themselves.
    stored = scalar(conn, "select json_agg(r)::text from quality.check_results r where run_id = %s", result.run_id)
    evidence = [json.dumps({k: str(v.value) for k, v in check.metadata.items()}), check.description or "", stored,
                *(p.read_text() for p in tmp_path.rglob("*.html")), *(p.read_text() for p in tmp_path.rglob("*.json"))]
    value = BROKEN_VALUES.get(case)
    if value:
        assert not any(value in text for text in evidence)


def test_small_cells_fail_pii3_and_block(warehouse_url, datasets, settings, tmp_path) -> None:
    result, checks, published = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_levels",
                                           LEVELS_BROKEN)
    check = checks["pii3_small_cells_suppressed"]
    assert not check.passed and check.blocking
    assert check.metadata["failing_by_field"].value == {"RequestsOpened": 1}
    assert not published and not result.success


def test_a_warning_rule_configured_blocking_blocks(warehouse_url, datasets, tmp_path, settings) -> None:
    strict = dataclasses.replace(settings, rules={**settings.rules, "Q2": Rule("Q2", "in range", blocking=True)})
    result, checks, published = run_checks(warehouse_url, datasets, strict, tmp_path, "fixture_requests", BROKEN["Q2"])
    assert not checks["q2_values_in_range"].passed and checks["q2_values_in_range"].blocking
    assert not published and not result.success


def test_a_waived_rule_passes_with_its_reason(warehouse_url, datasets, settings, tmp_path) -> None:
    reason = "Field names follow the state's schema, which publishes them this way."
    waived = {"fixture_requests": dataclasses.replace(datasets["fixture_requests"], waivers={"C4": reason})}
    result = materialize(
        [_published_asset("pub_fixture_requests", BROKEN["C4"]), publication_of_requests,
         *build_checks(waived, settings, tmp_path)],
        resources={"postgres": PostgresResource(url=warehouse_url)}, raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert result.success
    assert checks["c4_camel_case_names"].passed
    assert "state's schema" in checks["c4_camel_case_names"].metadata["waived"].value


def test_every_run_is_kept_in_quality_check_results(warehouse_url, datasets, settings, tmp_path, conn) -> None:
    first, _, _ = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_requests", requests_sql(CLEAN_ROWS))
    second, _, _ = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_requests", BROKEN["PII1"])
    rows = scalar(conn, "select json_object_agg(run_id || '/' || rule, json_build_array(passed, failing_count))"
                        " from quality.check_results where run_id in (%s, %s)", first.run_id, second.run_id)
    assert rows[f"{first.run_id}/PII1"] == [True, 0]
    assert rows[f"{second.run_id}/PII1"] == [False, 1]
    assert rows[f"{second.run_id}/C4"] == [True, 0]
    assert scalar(conn, "select count(distinct checked_at) from quality.check_results where run_id in (%s, %s)",
                  first.run_id, second.run_id) == 2
    assert (tmp_path / "fixture_requests" / "index.html").is_file()


def test_an_empty_publish_model_is_a_warning_not_a_silent_success(warehouse_url, datasets, settings,
                                                                   tmp_path) -> None:
    """Without raw.publish_policy the publish models build empty: Q1 says so."""
    result, checks, published = run_checks(warehouse_url, datasets, settings, tmp_path, "fixture_requests",
                                           requests_sql(CLEAN_ROWS, wrap="{} limit 0"))
    check = checks["q1_required_fields_complete"]
    assert not check.passed and not check.blocking
    assert result.success and published
    assert check.metadata["failing_by_field"].value == {"(rows)": 1}


def test_database_errors_reach_the_result_without_the_values_they_quote() -> None:
    from civicflow_assets.checks.validation import _without_values

    message = '(psycopg2.errors.InvalidTextRepresentation) invalid input syntax: "jane@example.com"\nLINE 1: ...'
    assert _without_values(message) == "(psycopg2.errors.InvalidTextRepresentation) invalid input syntax: <…>"
