"""Raw software-defined assets: one per raw table, each a source read and a landing, nothing more."""


from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from civicflow_assets.database import PostgresResource
from civicflow_assets.extracts import records_extract
from civicflow_assets.landing import LoadResult, get_cursor, land, land_files, prepare_target, set_cursor
from civicflow_assets.partitions import ONE_RUN_PER_RANGE, REQUEST_DAYS
from civicflow_assets.settings import PACKAGE_DIR
from civicflow_assets.sources.mapping import Mapping, load_mappings
from civicflow_assets.sources.open311 import FIELDS as OPEN311_FIELDS
from civicflow_assets.sources.resources import CensusResource, Open311Resource, SourceFilesResource

BUILTIN_MAPPINGS = load_mappings([PACKAGE_DIR / "sources" / "mappings"])
API_MAPPINGS = {"open311_requests", "census_acs_api"}  # read by the API assets below, not from files


def _metadata(results: list[LoadResult]) -> dict[str, Any]:
    totals = {key: sum(r.metadata()[key] for r in results) for key in (
        "rows_read", "rows_loaded", "rows_quarantined", "rows_inserted", "rows_updated", "rows_deleted")}
    lines = ["| source | file | read | loaded | quarantined |", "|---|---|---|---|---|"]
    lines += [f"| {r.source} | {f.source_file.rsplit('/', 1)[-1]} | {f.read} | {f.loaded} | {f.quarantined} |"
              for r in results for f in r.files]
    return {**totals, "loads": MetadataValue.md("\n".join(lines)),
            "seconds": round(sum(r.seconds for r in results), 2)}


def _file_asset(target: str, mappings: list[Mapping]) -> AssetsDefinition:
    names = ", ".join(m.name for m in mappings)

    @asset(
        key=["raw", target],
        group_name="raw",
        kinds={"postgres"},
        description=f"raw.{target}, landed from file extracts by the mappings: {names}.",
        metadata={"mappings": names},
    )
    def _raw_table(context: AssetExecutionContext, postgres: PostgresResource,
                   source_files: SourceFilesResource) -> MaterializeResult:
        results = []
        with postgres.connection() as conn:
            for mapping in mappings:
                prepare_target(conn, mapping)
                files = source_files.files_for(mapping)
                if not files:
                    # No extract is no evidence that the rows are gone: keep what was loaded before.
                    context.log.warning(f"{mapping.name}: no files match {list(mapping.files)}; nothing landed")
                    continue
                result = land_files(conn, mapping, files, log=context.log)
                context.log.info(f"{mapping.name}: {result.metadata()}")
                results.append(result)
        return MaterializeResult(metadata=_metadata(results))

    return _raw_table


def file_assets(mappings: dict[str, Mapping]) -> list[AssetsDefinition]:
    """One asset per raw table; a city's new mapping joins the asset of the table it targets."""
    by_target: dict[str, list[Mapping]] = defaultdict(list)
    for mapping in mappings.values():
        if mapping.name not in API_MAPPINGS:
            by_target[mapping.target].append(mapping)
    return [_file_asset(target, group) for target, group in sorted(by_target.items())]


@asset(key=["raw", "open311_requests"], group_name="raw", kinds={"postgres"},
       partitions_def=REQUEST_DAYS, backfill_policy=ONE_RUN_PER_RANGE,
       description="raw.open311_requests: GeoReport v2 requests merged by id. Unpartitioned runs (hourly, "
                   "main job) read what was updated since the kept cursor; a partition or a backfill of a "
                   "date range re-reads the requests opened on those days.")
def open311_requests(context: AssetExecutionContext, postgres: PostgresResource,
                     open311: Open311Resource) -> MaterializeResult:
    mapping = BUILTIN_MAPPINGS["open311_requests"]
    with postgres.connection() as conn:
        prepare_target(conn, mapping)
        if not open311.base_url:
            return MaterializeResult(metadata={"skipped": "CIVICFLOW_OPEN311_URL is not set"})
        client = open311.client()
        if context.has_partition_key_range:
            window = context.partition_time_window
            records = list(client.iter_requests(window.start, window.end))
            result = land(conn, mapping, [records_extract(open311.base_url, [*OPEN311_FIELDS, "extra"], records)],
                          log=context.log)
            context.log.info(f"open311: backfilled {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}")
            return MaterializeResult(metadata={**_metadata([result]), "window": f"{window.start} to {window.end}"})
        cursor = get_cursor(conn, mapping.name)
        records = list(client.iter_updated_since(cursor, datetime.now(UTC)))
        result = land(conn, mapping, [records_extract(open311.base_url, [*OPEN311_FIELDS, "extra"], records)],
                      log=context.log)
        if (new_cursor := client.max_updated(records)) is not None:
            set_cursor(conn, mapping.name, new_cursor)
    context.log.info(f"open311: cursor {cursor} -> {new_cursor}")
    return MaterializeResult(metadata={**_metadata([result]), "cursor": str(new_cursor or cursor)})


@asset(key=["raw", "acs_tracts_api"], group_name="raw", kinds={"postgres"},
       description="raw.acs_tracts_api: ACS 5-year tract estimates and margins of error from the Census API.")
def acs_tracts_api(postgres: PostgresResource, census: CensusResource) -> MaterializeResult:
    mapping = BUILTIN_MAPPINGS["census_acs_api"]
    with postgres.connection() as conn:
        prepare_target(conn, mapping)
        if not census.base_url:
            return MaterializeResult(metadata={"skipped": "CIVICFLOW_CENSUS_API_URL is not set"})
        variables = [c for c in mapping.source_columns if c not in ("state", "county", "tract")]
        rows = census.client().fetch(census.year, "acs/acs5", variables, "tract:*", census.geo_in)
        result = land(conn, mapping, [records_extract(f"{census.base_url}/{census.year}/acs/acs5",
                                                      mapping.source_columns, rows)])
    return MaterializeResult(metadata=_metadata([result]))
