"""The local CKAN portal, for real: CKAN 2.11.6 with the datastore on the project's PostgreSQL, Redis, and the
Solr stand-in, driven over HTTP through ckanapi exactly as the publishing assets will drive it."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest
import requests
from ckanapi import CKANAPIError, NotAuthorized, RemoteCKAN, ValidationError

from civicflow_assets.publish.ckan_server import SYSADMIN, CkanError, ckan_connection, ckan_server, external_ckan
from civicflow_assets.publish.resources import local_datastore_write_url
from civicflow_assets.publish.solr_standin import Core, select

CSV = b"request_id,status,days_open\n1,closed,3\n2,open,12\n3,closed,1\n"
USER_AGENT = "civicflow-tests/1.0"
FIELDS = [{"id": "request_id", "type": "int"}, {"id": "status", "type": "text"}, {"id": "days_open", "type": "int"}]


@dataclass(frozen=True)
class Published:
    organization: dict[str, Any]
    package: dict[str, Any]
    resource: dict[str, Any]


@pytest.fixture(scope="module")
def published(ckan: RemoteCKAN, unique_ckan_name: Callable[[str], str]) -> Iterator[Published]:
    organization = ckan.action.organization_create(name=unique_ckan_name("cf-org"), title="CivicFlow Test Works")
    package = ckan.action.package_create(
        name=unique_ckan_name("cf-requests"), title="Pothole service requests", owner_org=organization["id"],
        notes="Service requests from the test city.", tags=[{"name": "potholes"}],
        extras=[{"key": "source", "value": "civicflow"}])
    resource = ckan.call_action(
        "resource_create", {"package_id": package["id"], "name": "pothole_requests.csv", "format": "CSV"},
        files={"upload": ("pothole_requests.csv", io.BytesIO(CSV))})
    yield Published(organization, package, resource)
    with contextlib.suppress(CKANAPIError, requests.RequestException):  # tidy-up only
        ckan.action.dataset_purge(id=package["id"])
        ckan.action.organization_purge(id=organization["id"])


def test_package_create_with_an_uploaded_csv(ckan: RemoteCKAN, published: Published) -> None:
    shown = ckan.action.package_show(id=published.package["name"])

    assert shown["organization"]["name"] == published.organization["name"]
    assert [r["name"] for r in shown["resources"]] == ["pothole_requests.csv"]
    resource = shown["resources"][0]
    assert resource["url_type"] == "upload"
    assert resource["format"] == "CSV"
    download = requests.get(resource["url"], timeout=30)
    assert download.status_code == 200
    assert download.content == CSV


def test_package_patch_changes_metadata_and_keeps_resources(ckan: RemoteCKAN, published: Published) -> None:
    ckan.action.package_patch(id=published.package["id"], notes="Patched by the test.", version="2")

    shown = ckan.action.package_show(id=published.package["id"])
    assert shown["notes"] == "Patched by the test."
    assert shown["version"] == "2"
    assert [r["id"] for r in shown["resources"]] == [published.resource["id"]]
    assert {e["key"]: e["value"] for e in shown["extras"]} == {"source": "civicflow"}


def test_same_name_twice_is_a_validation_error(ckan: RemoteCKAN, published: Published) -> None:
    with pytest.raises(ValidationError) as error:
        ckan.action.package_create(name=published.package["name"], owner_org=published.organization["id"])
    assert "name" in error.value.error_dict


def test_datastore_create_upsert_search_and_sql(ckan: RemoteCKAN, published: Published) -> None:
    resource_id = published.resource["id"]
    ckan.action.datastore_create(
        resource_id=resource_id, force=True, fields=FIELDS, primary_key=["request_id"],
        records=[{"request_id": 1, "status": "closed", "days_open": 3},
                 {"request_id": 2, "status": "open", "days_open": 12}])
    ckan.action.datastore_upsert(
        resource_id=resource_id, force=True, method="upsert",
        records=[{"request_id": 2, "status": "closed", "days_open": 14},
                 {"request_id": 3, "status": "open", "days_open": 1}])

    found = ckan.action.datastore_search(resource_id=resource_id, filters={"status": "closed"}, sort="request_id")
    assert [(r["request_id"], r["days_open"]) for r in found["records"]] == [(1, 3), (2, 14)]
    assert [f["id"] for f in found["fields"]] == ["_id", "request_id", "status", "days_open"]
    sql = ckan.action.datastore_search_sql(
        sql=f'SELECT status, count(*) AS n, max(days_open) AS longest FROM "{resource_id}" GROUP BY status '
            "ORDER BY status")
    assert [(r["status"], int(r["n"]), int(r["longest"])) for r in sql["records"]] == [("closed", 2, 14),
                                                                                        ("open", 1, 1)]
    with pytest.raises(ValidationError):
        ckan.action.datastore_upsert(resource_id=resource_id, force=True, method="insert",
                                     records=[{"request_id": 1, "status": "again", "days_open": 0}])
    searched = ckan.action.datastore_search(resource_id=resource_id, q="open")
    assert [r["request_id"] for r in searched["records"]] == [3]
    if not external_ckan():
        # One full-text index, on _full_text: none more per text field (ckan_server.py).
        with contextlib.closing(psycopg2.connect(local_datastore_write_url())) as conn, conn.cursor() as cur:
            cur.execute("select pg_get_indexdef(indexrelid) from pg_index where indrelid = %s::regclass"
                        " and pg_get_indexdef(indexrelid) ~ 'USING (gin|gist)'", (f'"{resource_id}"',))
            assert [d.split(" USING ")[1] for (d,) in cur.fetchall()] == ["gin (_full_text)"]


def test_package_search_and_package_list_find_the_dataset(ckan: RemoteCKAN, published: Published) -> None:
    name = published.package["name"]

    by_text = ckan.action.package_search(q="pothole requests", rows=1000)
    assert name in [p["name"] for p in by_text["results"]]
    by_org = ckan.call_action("package_search", {
        "fq": f'organization:"{published.organization["name"]}"', "facet.field": ["tags", "res_format"]})
    assert [p["name"] for p in by_org["results"]] == [name]
    assert by_org["facets"] == {"tags": {"potholes": 1}, "res_format": {"CSV": 1}}
    assert ckan.action.package_search(fq=f"name:{name}", rows=1)["results"][0]["resources"][0]["name"] == (
        "pothole_requests.csv")
    assert ckan.action.package_search(q=f"name:{name}-nope")["count"] == 0
    assert name in ckan.action.package_list()
    listed = ckan.action.organization_list(all_fields=True, organizations=[published.organization["name"]])
    assert listed[0]["package_count"] == 1


def test_dataset_and_organization_pages_render(ckan: RemoteCKAN, published: Published) -> None:
    dataset_page = requests.get(f"{ckan.address}/dataset/{published.package['name']}", timeout=30)
    assert dataset_page.status_code == 200
    assert "pothole_requests.csv" in dataset_page.text

    organization_page = requests.get(f"{ckan.address}/organization/{published.organization['name']}", timeout=30)
    assert organization_page.status_code == 200
    assert "Pothole service requests" in organization_page.text
    search_page = requests.get(f"{ckan.address}/dataset/", params={"q": "pothole"}, timeout=30)
    assert search_page.status_code == 200
    assert published.package["name"] in search_page.text


def test_a_bad_token_cannot_write(ckan: RemoteCKAN, published: Published) -> None:
    with RemoteCKAN(ckan.address, apikey="not-a-token", user_agent=USER_AGENT) as intruder:
        with pytest.raises(NotAuthorized):
            intruder.action.package_patch(id=published.package["id"], notes="defaced")
        with pytest.raises(NotAuthorized):
            intruder.action.api_token_list(user_id=SYSADMIN)
        # Reads of public data still work anonymously, as CKAN intends.
        assert intruder.action.package_show(id=published.package["id"])["notes"] != "defaced"


def test_ckan_connection_uses_the_configured_instance() -> None:
    env = {"CIVICFLOW_CKAN_URL": "https://data.example.org/", "CIVICFLOW_CKAN_API_TOKEN": "secret"}
    assert ckan_connection(env) == ("https://data.example.org", "secret")
    with pytest.raises(CkanError):
        ckan_connection({"CIVICFLOW_CKAN_URL": "https://data.example.org"})


def test_solr_stand_in_applies_ckan_filters() -> None:
    core = Core("unit")
    core.add({"index_id": "1", "id": "a", "name": "roads", "title": "Road repairs", "site_id": "default",
              "capacity": "public", "state": "active", "permission_labels": ["public"], "tags": ["roads"]})
    core.add({"index_id": "2", "id": "b", "name": "budget", "title": "Budget", "site_id": "default",
              "capacity": "private", "state": "active", "permission_labels": ["member-x"], "tags": []})
    public = ['+capacity:public  +state:(active OR draft)', '+site_id:"default"',
              '+permission_labels:("public" OR "creator-u")']

    def names(**params: Any) -> list[str]:
        result = select(core, {k.replace("_", "."): v if isinstance(v, list) else [v] for k, v in params.items()})
        return [d["name"] for d in result["response"]["docs"]]

    assert names(q="*:*", fq=public, q_op="AND") == ["roads"]
    assert names(q="repair", defType="dismax", qf="name^4 title^4 tags^2 text", q_op="AND") == ["roads"]
    assert names(q='name:"budget" OR id:"budget"', q_op="AND") == ["budget"]
    assert names(q="*:*", fq="-tags:roads", sort="name asc") == ["budget"]
    core.delete_query('+(id:"a" OR name:"a") AND +site_id:"default"')
    assert names(q="*:*") == ["budget"]


def test_start_is_idempotent_and_stop_then_start_works(ckan: RemoteCKAN, published: Published) -> None:
    if external_ckan():
        pytest.skip("CIVICFLOW_CKAN_URL points at another CKAN: the local lifecycle is not in use")
    server = ckan_server()
    assert server.status().startswith(f"running at {ckan.address}")
    began = time.monotonic()
    assert server.start() == ckan.address
    assert time.monotonic() - began < 1.0

    server.stop()
    assert server.status() == "stopped"
    assert not server.is_running()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{ckan.address}/api/3/action/status_show", timeout=5)

    began = time.monotonic()
    assert server.start() == ckan.address  # same port, so clients made before the restart keep working
    warm_start = time.monotonic() - began
    assert warm_start < 20, f"warm start took {warm_start:.1f}s"
    assert server.status().startswith("running")
    # The search index survived the restart along with the database.
    found = ckan.action.package_search(fq=f"name:{published.package['name']}")
    assert found["count"] == 1
    ckan.action.package_patch(id=published.package["id"], notes="Written after the restart.")
