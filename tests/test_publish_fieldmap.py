"""The field map (rule P2): each published field followed through the dbt models to its raw table and the source
file's column, with the transformations on the way; and the catalog agrees with dbt and checks/datasets.yaml."""

from __future__ import annotations

import csv
import io

import pytest

from civicflow_assets.publish.catalog import load_catalog
from civicflow_assets.publish.fieldmap import FieldMapper, Manifest, field_map_csv
from civicflow_assets.publish.table import describe_table
from civicflow_assets.settings import PACKAGE_DIR
from civicflow_assets.sources.mapping import load_mappings
from tests.test_publish_fixtures import requests_spec

SOURCE = "source.civicflow.city311.service_requests"
STAGING = "model.civicflow.stg_requests"
MART = "model.civicflow.fct_requests"
PUBLISHED = "model.civicflow.pub_requests"

# The shape dbt writes: compiled SQL with relation names, dependencies, column docs.
MANIFEST = Manifest({
    SOURCE: {"resource_type": "source", "name": "service_requests", "identifier": "service_requests",
             "schema": "raw", "source_name": "city311", "columns": {}},
    STAGING: {"resource_type": "model", "name": "stg_requests", "schema": "staging", "alias": "stg_requests",
              "depends_on": {"nodes": [SOURCE]}, "columns": {},
              "compiled_code": """
                  with source as (select * from "db"."raw"."service_requests"),
                  renamed as (
                      select service_request_id,
                             case request_type when 'Pothole' then 'Potholes' else request_type end as request_type,
                             created_at
                      from source)
                  select * from renamed"""},
    MART: {"resource_type": "model", "name": "fct_requests", "schema": "marts", "alias": "fct_requests",
           "relation_name": '"db"."marts"."fct_requests"', "depends_on": {"nodes": [STAGING]},
           "columns": {"RequestId": {"description": "Unique request key."},
                       "CreatedDate": {"description": "When the request was created."}},
           "compiled_code": """
               select 'chattanooga:' || service_request_id as "RequestId", request_type as "RequestType",
                      created_at as "CreatedDate", 'run-1'::text as "DbtRunId"
               from "db"."staging"."stg_requests" """},
    PUBLISHED: {"resource_type": "model", "name": "pub_requests", "schema": "fixture", "alias": "pub_requests",
                "depends_on": {"nodes": [MART]}, "columns": {},
                "compiled_code": 'select "RequestId", "RequestType", "CreatedDate", "DbtRunId" '
                                 'from "db"."marts"."fct_requests"'},
})


def test_each_field_is_followed_to_the_source_file(conn) -> None:
    with conn.cursor() as cur:
        cur.execute('create schema if not exists fixture; drop table if exists fixture.pub_requests; '
                    'create table fixture.pub_requests ("RequestId" text primary key, "RequestType" text, '
                    '"CreatedDate" timestamptz, "DbtRunId" text)')
    conn.commit()
    table = describe_table(conn, requests_spec("pub_requests", "cf-fieldmap", geometry_field=None,
                                               modified_field=None))
    mapper = FieldMapper(MANIFEST, load_mappings([PACKAGE_DIR / "sources" / "mappings"]))
    rows = {r["PublishedField"]: r for r in csv.DictReader(io.StringIO(field_map_csv(mapper.field_map(table))
                                                                        .decode()))}
    assert list(rows) == ["RequestId", "RequestType", "CreatedDate", "DbtRunId"]

    request_id = rows["RequestId"]
    assert request_id["Description"] == "Unique request key."
    assert request_id["SourceTable"] == "raw.service_requests"
    assert "service_request_key (311/potholes_distressed_pavement*.csv)" in request_id["SourceField"]
    assert request_id["SourceSystem"].startswith("chattanooga_311_potholes: ")
    assert "'chattanooga:' || service_request_id" in request_id["Transformation"]
    assert request_id["Lineage"] == ("pub_requests.RequestId <- fct_requests.RequestId <- "
                                     "stg_requests.service_request_id")

    assert "CASE request_type WHEN 'Pothole' THEN 'Potholes'" in rows["RequestType"]["Transformation"]
    assert rows["CreatedDate"]["Transformation"] == "copied unchanged"
    assert "created_date (311/potholes_distressed_pavement*.csv)" in rows["CreatedDate"]["SourceField"]
    assert rows["DbtRunId"]["SourceSystem"] == "CivicFlow (computed in dbt model fct_requests)"


def test_the_catalog_publishes_every_declared_dataset_from_a_dbt_model() -> None:
    catalog = load_catalog()
    manifest = Manifest.load()
    if not manifest.nodes:
        pytest.skip("no dbt manifest yet")
    for spec in catalog.datasets.values():
        assert manifest.find(spec.schema_name, spec.table_name), f"{spec.table} is not a dbt model"
        assert spec.key and spec.owner and spec.update_frequency
        assert (spec.schema_name, spec.table_name) in spec.upstream_keys
