"""The publication assets: one per published dataset (ckan/<dataset>, downstream of its published table and the
mart), and ckan/data_json, the catalog of them all. Thin: the gate, then the publisher."""

# No `from __future__ import annotations`: Dagster reads the context and config annotations at runtime.
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_shared.check import CheckError

from civicflow_assets.database import PostgresResource
from civicflow_assets.publish import audit
from civicflow_assets.publish.catalog import Catalog, DatasetSpec
from civicflow_assets.publish.dcat import publish_data_json
from civicflow_assets.publish.gate import evaluate_gate
from civicflow_assets.publish.publisher import PublishContext, default_mapper, ensure_organization, publish_dataset
from civicflow_assets.publish.resources import CkanResource

GROUP = "publication"
KEY_PREFIX = "ckan"
DATA_JSON = "data_json"


class PublishConfig(Config):
    full_compare: bool = False  # hash every row, not only those modified since the last publication


def publication_key(dataset: str) -> AssetKey:
    return AssetKey([KEY_PREFIX, dataset])


def op_name(dataset: str) -> str:
    return publication_key(dataset).to_python_identifier()


def _asset_graph(context: AssetExecutionContext):
    """The repository's graph (every check's spec); a job run in process outside a repository has its own."""
    try:
        return context.repository_def.asset_graph
    except CheckError:
        return context.job_def.asset_layer.asset_graph


def publication_asset(spec: DatasetSpec, catalog: Catalog) -> AssetsDefinition:
    @asset(
        key=publication_key(spec.name),
        group_name=GROUP,
        deps=[AssetKey(list(k)) for k in spec.upstream_keys],
        kinds={"ckan"},
        description=f"{spec.title} on CKAN (/dataset/{spec.ckan_name}): metadata, DataStore rows (only what changed)"
                    f", file resources and field map, from {spec.table}; never while a blocking check fails.",
        metadata={"ckan_dataset": spec.ckan_name, "published_table": spec.table, "key": ", ".join(spec.key)},
    )
    def _publish(context: AssetExecutionContext, config: PublishConfig, postgres: PostgresResource,
                 ckan: CkanResource) -> MaterializeResult:
        gate = evaluate_gate(context.instance, _asset_graph(context), spec)
        if not gate.publishable:
            message = f"{spec.name} is not published: {gate.reason}"
            context.log.error(message)
            raise Failure(description=message, metadata={"dataset": spec.name, "reasons": gate.reason})
        with ckan.client() as client:
            publication = publish_dataset(spec, PublishContext(
                warehouse_url=postgres.url, client=client, organization=catalog.organization,
                datastore_url=ckan.datastore_url(), run_id=context.run.run_id, checks=gate.checks,
                full_compare=config.full_compare, mapper=default_mapper(postgres.url), logger=context.log))
            retries = client.retries
        for outcome in publication.sent:
            context.log.info(f"{spec.name}: {outcome.role} {outcome.action} ({outcome.rows_inserted} inserted, "
                             f"{outcome.rows_updated} updated, {outcome.rows_deleted} deleted)")
        return MaterializeResult(metadata={
            **publication.metadata(),
            "ckan_url": MetadataValue.url(publication.url),
            "check_summary": gate.checks.text(),
            "ckan_retries": retries,
        })

    return _publish


def data_json_asset(catalog: Catalog, dataset_keys: list[AssetKey]) -> AssetsDefinition:
    @asset(
        key=AssetKey([KEY_PREFIX, DATA_JSON]),
        group_name=GROUP,
        deps=dataset_keys,
        kinds={"ckan"},
        description=f"The DCAT-US (Project Open Data v1.1) data.json of every published dataset, validated against "
                    f"the schema's required fields, on CKAN as /dataset/{catalog.catalog.ckan_name}.",
    )
    def _data_json(context: AssetExecutionContext, postgres: PostgresResource, ckan: CkanResource) -> MaterializeResult:
        with ckan.client() as client:
            client.check_token()
            organization = ensure_organization(client, catalog.organization)
            outcome, document = publish_data_json(client, catalog, organization["id"])
            url = f"{client.url}/dataset/{catalog.catalog.ckan_name}"
        with postgres.connection() as conn:
            audit.ensure_audit_table(conn)
            audit.record(conn, run_id=context.run.run_id, dataset=DATA_JSON, ckan_dataset=catalog.catalog.ckan_name,
                         ckan_url=url, outcomes=[outcome], check_summary={})
        return MaterializeResult(metadata={"datasets": len(document["dataset"]), "action": outcome.action,
                                           "content_hash": outcome.content_hash or "",
                                           "ckan_url": MetadataValue.url(url)})

    return _data_json
