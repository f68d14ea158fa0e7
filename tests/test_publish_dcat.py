"""data.json: the DCAT-US (Project Open Data v1.1) catalog of the published datasets, checked against the schema's
required fields, and published on CKAN only when it changed."""

from __future__ import annotations

import copy

import psycopg2
import pytest
import requests

from civicflow_assets.publish.dcat import CatalogInvalid, build_data_json, publish_data_json, validation_errors
from civicflow_assets.publish.publisher import ensure_organization, publish_dataset
from tests.test_publish_fixtures import catalog_of, make_client, make_context, make_requests_table, requests_spec

pytest_plugins = ["tests.test_publish_fixtures"]


@pytest.fixture(scope="module")
def catalog(warehouse_url, ckan, organization, datastore_url, unique_ckan_name):
    with psycopg2.connect(warehouse_url) as conn:
        make_requests_table(conn, "requests_dcat", every=29)
    spec = requests_spec("requests_dcat", unique_ckan_name("cf-dcat"))
    never = requests_spec("requests_dcat", unique_ckan_name("cf-never-published"), name="never_published")
    with make_client(ckan) as client:
        publish_dataset(spec, make_context(warehouse_url, client, organization, datastore_url))
    return catalog_of(organization, spec, never, ckan_name=unique_ckan_name("cf-datajson"))


def test_data_json_lists_the_published_datasets_and_validates(catalog, ckan) -> None:
    spec = next(iter(catalog.datasets.values()))
    with make_client(ckan) as client:
        document = build_data_json(client, catalog)
    assert validation_errors(document) == []
    assert document["conformsTo"] == "https://project-open-data.cio.gov/v1.1/schema"
    [dataset] = document["dataset"]  # the never-published one is left out
    assert dataset["title"] == spec.title
    assert dataset["publisher"]["name"] == "CivicFlow Publication Tests"
    assert dataset["contactPoint"]["hasEmail"] == "mailto:open-data@civicflow.invalid"
    assert dataset["accrualPeriodicity"] == "R/P1D" and dataset["accessLevel"] == "public"
    assert dataset["temporal"].startswith("2003-") and len(dataset["spatial"].split(",")) == 4
    formats = {d["format"] for d in dataset["distribution"]}
    assert {"API", "CSV", "JSON", "GeoJSON", "KML", "SHP", "ODS", "XLSX"} <= formats
    for distribution in dataset["distribution"]:
        url = distribution.get("downloadURL") or distribution["accessURL"]
        assert requests.get(url, timeout=60).status_code == 200, url


@pytest.mark.parametrize(("path", "change", "error"), [
    (("dataset", 0), lambda d: d.pop("contactPoint"), "'contactPoint' is a required property"),
    (("dataset", 0), lambda d: d.update(keyword=[]), "keyword"),
    (("dataset", 0), lambda d: d.update(accessLevel="open"), "accessLevel"),
    (("dataset", 0, "distribution", 0), lambda d: d.pop("mediaType") and d.update(downloadURL="https://x.org/a"),
     "mediaType"),
    ((), lambda d: d.pop("conformsTo"), "'conformsTo' is a required property"),
])
def test_the_schema_rejects_what_the_spec_requires(catalog, ckan, path, change, error) -> None:
    with make_client(ckan) as client:
        document = copy.deepcopy(build_data_json(client, catalog))
    target = document
    for part in path:
        target = target[part]
    change(target)
    assert any(error in message for message in validation_errors(document))


def test_published_as_a_ckan_resource_only_when_changed(catalog, ckan) -> None:
    with make_client(ckan) as client:
        organization = ensure_organization(client, catalog.organization)
        first, document = publish_data_json(client, catalog, organization["id"])
        again, _ = publish_data_json(client, catalog, organization["id"])
    assert first.action in ("created", "updated") and again.action == "unchanged"
    package = ckan.action.package_show(id=catalog.catalog.ckan_name)
    [resource] = [r for r in package["resources"] if r.get("civicflow_role") == "data_json"]
    assert requests.get(resource["url"], timeout=60).json() == document


def test_an_invalid_catalog_is_not_published(catalog, ckan) -> None:
    spec = next(iter(catalog.datasets.values()))
    broken = catalog_of(catalog.organization, type(spec)(**{**spec.__dict__, "contact_email": "nobody"}),
                        ckan_name=catalog.catalog.ckan_name)
    with make_client(ckan) as client, pytest.raises(CatalogInvalid, match="hasEmail"):
        publish_data_json(client, broken, "unused")
