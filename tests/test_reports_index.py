"""The transparency index moves the right way, by the documented weight: a dataset that meets every criterion
scores 100; take one criterion away (a stale publication, a missing field map ...) and it loses exactly that
criterion's weight from index.yaml, and the portal loses the weight divided by the number of datasets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from civicflow_assets.publish.catalog import load_catalog
from civicflow_assets.reports.index import (
    CRITERIA,
    INDEX_PATH,
    Evidence,
    IndexConfigError,
    evidence_for,
    index_rows,
    load_method,
    portal,
    score,
)
from civicflow_assets.reports.tables import INDEX_COLUMNS, TRANSPARENCY_INDEX

NOW = datetime(2024, 10, 1, 12, tzinfo=UTC)
METHOD = load_method()


def published_package(spec, field_map: bool = True) -> dict:
    """A package as package_show returns one that CivicFlow's publisher made (trimmed to what the index reads)."""
    resources = [
        {"name": "DataStore API", "format": "API", "url": "", "datastore_active": True, "civicflow_role": "datastore"},
        {"name": "CSV", "format": "CSV", "url": "http://ckan/d.csv", "civicflow_role": "csv"},
        {"name": "JSON", "format": "JSON", "url": "http://ckan/d.json", "civicflow_role": "json"},
        {"name": "XLSX", "format": "XLSX", "url": "http://ckan/d.xlsx", "civicflow_role": "xlsx"},
        {"name": "ODS", "format": "ODS", "url": "http://ckan/d.ods", "civicflow_role": "ods"},
    ]
    if field_map:
        resources.append({"name": "field map", "format": "CSV", "url": "http://ckan/fm.csv",
                          "civicflow_role": "field_map"})
    return {"state": "active", "title": spec.title, "license_id": "cc-zero", "resources": resources,
            "extras": [{"key": "owner", "value": spec.owner}, {"key": "conversion", "value": "dbt, then COPY"},
                       {"key": "software_versions", "value": "python 3.11, dagster 1.13"}]}


def complete(name: str = "service_levels", **changes: object) -> Evidence:
    """Evidence of a dataset that meets every criterion, published an hour ago, every check passed."""
    spec = load_catalog().datasets[name]
    evidence = Evidence(spec.name, spec.ckan_name, spec.title, spec.update_frequency, published=True,
                        file_formats=("CSV", "JSON", "ODS", "XLSX"), api=True, license_id="cc-zero", owner=spec.owner,
                        field_map=True, conversion="dbt, then COPY", software_versions="python 3.11",
                        last_published=NOW - timedelta(hours=1), checks_passed=12, checks_run=12)
    return dataclasses.replace(evidence, **changes)


def test_the_weights_are_documented_and_add_up_to_100() -> None:
    raw = yaml.safe_load(INDEX_PATH.read_text())
    assert set(raw["criteria"]) == set(CRITERIA)
    assert sum(c["weight"] for c in raw["criteria"].values()) == 100
    for criterion in raw["criteria"].values():
        assert criterion["census"] and criterion["toronto"] and criterion["measure"] and criterion["rule"]
    methodology = METHOD.methodology_csv().decode().splitlines()
    assert methodology[0].startswith("Criterion,Weight,Rule,OpenDataCensusQuestion,TorontoQualityDimension")
    assert len(methodology) == 1 + len(CRITERIA)


def test_weights_that_do_not_add_up_are_refused(tmp_path) -> None:
    raw = yaml.safe_load(INDEX_PATH.read_text())
    raw["criteria"]["field_map"]["weight"] += 1
    path = tmp_path / "index.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(IndexConfigError, match="add up to 100"):
        load_method(path)


def test_a_dataset_meeting_every_criterion_scores_100() -> None:
    result = score(complete(), METHOD, NOW)
    assert result.total == pytest.approx(100)
    assert result.missing(METHOD) == []


@pytest.mark.parametrize(("criterion", "changes"), [
    ("freshness", {"last_published": NOW - timedelta(days=3)}),  # daily dataset, 36 h target
    ("freshness", {"last_published": None}),  # never published by the pipeline
    ("field_map", {"field_map": False}),
    ("owner", {"owner": " "}),
    ("conversion_doc", {"software_versions": ""}),
    ("open_license", {"license_id": "other-closed"}),
    ("api_access", {"api": False}),
    ("bulk_download", {"file_formats": ()}),  # the API alone: still machine-readable and open
    ("open_format", {"file_formats": ("XLSX",)}),  # a spreadsheet without its open twin; the API stays
])
def test_one_criterion_missing_lowers_the_score_by_exactly_its_weight(criterion: str, changes: dict) -> None:
    before = score(complete(), METHOD, NOW)
    after = score(complete(**changes), METHOD, NOW)
    lost = {c for c in CRITERIA if after.points[c] != before.points[c]}
    assert lost == {criterion}
    assert before.total - after.total == pytest.approx(METHOD.weight(criterion))
    assert METHOD.weight(criterion) > 0


def test_the_freshness_target_follows_the_update_frequency() -> None:
    budget = complete("budget_variance", last_published=NOW - timedelta(days=30))  # yearly: a year and a margin
    assert score(budget, METHOD, NOW).fresh
    assert score(budget, METHOD, NOW).target_hours == 8928
    daily = complete(last_published=NOW - timedelta(hours=37))
    assert not score(daily, METHOD, NOW).fresh
    assert score(complete(last_published=NOW - timedelta(hours=35)), METHOD, NOW).fresh


def test_the_check_pass_rate_scores_its_share() -> None:
    half = score(complete(checks_passed=6, checks_run=12), METHOD, NOW)
    assert 100 - half.total == pytest.approx(METHOD.weight("check_pass_rate") / 2)
    assert score(complete(checks_passed=0, checks_run=0), METHOD, NOW).points["check_pass_rate"] == 0


def test_an_unpublished_dataset_scores_only_nothing() -> None:
    spec = load_catalog().datasets["service_levels"]
    assert score(Evidence(spec.name, spec.ckan_name, spec.title, spec.update_frequency), METHOD, NOW).total == 0


def test_the_portal_loses_the_weight_over_the_number_of_datasets() -> None:
    names = list(load_catalog().datasets)
    everything = [complete(name) for name in names]
    stale = [complete(name) if name != "service_levels" else complete(name, last_published=NOW - timedelta(days=2))
             for name in names]
    no_field_map = [complete(name) if name != "demographic_equity" else complete(name, field_map=False)
                    for name in names]
    assert portal(everything, METHOD, NOW).total == pytest.approx(100)
    assert 100 - portal(stale, METHOD, NOW).total == pytest.approx(METHOD.weight("freshness") / len(names))
    assert 100 - portal(no_field_map, METHOD, NOW).total == pytest.approx(METHOD.weight("field_map") / len(names))


def test_index_rows_fit_the_published_table() -> None:
    rows = index_rows(portal([complete("service_levels"), complete("budget_variance", field_map=False)], METHOD, NOW),
                      METHOD)
    declared = {f.name for f in TRANSPARENCY_INDEX.fields}
    assert all(set(row) <= declared for row in rows)
    assert [r["Scope"] for r in rows] == ["dataset", "dataset", "portal"]
    by_name = {r["Dataset"]: r for r in rows}
    assert by_name["budget_variance"]["FieldMap"] == 0
    assert by_name["budget_variance"]["Score"] == pytest.approx(100 - METHOD.weight("field_map"))
    assert by_name["portal"]["Score"] == pytest.approx(100 - METHOD.weight("field_map") / 2)
    assert sum(by_name["portal"][c] for c in INDEX_COLUMNS) == pytest.approx(by_name["portal"]["Score"])


def test_evidence_is_read_from_the_package_and_the_warehouse(conn) -> None:
    # A dataset id that no publication or check run of this session used.
    spec = dataclasses.replace(load_catalog().datasets["service_levels"], name="never_published_here")
    evidence = evidence_for(spec, published_package(spec), conn)
    assert evidence.published and evidence.api and evidence.field_map
    assert evidence.file_formats == ("CSV", "JSON", "ODS", "XLSX")
    assert evidence.owner == spec.owner and evidence.license_id == "cc-zero"
    assert evidence.last_published is None and evidence.checks_run == 0
    met_all_but = score(evidence, METHOD, NOW).missing(METHOD)
    assert met_all_but == ["freshness", "check_pass_rate"]
    without = evidence_for(spec, published_package(spec, field_map=False), conn)
    assert score(evidence, METHOD, NOW).total - score(without, METHOD, NOW).total == METHOD.weight("field_map")
