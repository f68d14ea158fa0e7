"""Publishing 1,000,000 rows to CKAN's DataStore, against naive `datastore_upsert` in 500-row calls, in one run.

  naive     datastore_create, then datastore_upsert (method upsert) in 500-row calls, as a script would: measured on a
            sample (--naive-rows, 20,000 by default) and extrapolated to the whole table
  first     CivicFlow's first publication: datastore_create through CKAN, then COPY straight into the DataStore
            database in parallel slices with _full_text computed as CKAN's trigger does, its (GIN) indexes rebuilt after
  delta     1% of the rows changed, 1% new and 0.1% deleted: found by ModifiedDate and row hashes against the state
            table, sent as one COPY + delete + insert-on-conflict transaction
  nothing   a publication with nothing changed
  api       the fallback for a CKAN whose database is out of reach: datastore_upsert in 10,000-row calls (sample)

Targets: first load at least 10x the naive rate; a 1% delta under 30 s. The table is resampled from the real
Chattanooga pothole export (../shared/data), in the shape of publish.pub_service_requests.

    .civicflow/venv/bin/python bench/publish.py [--rows 1000000] [--naive-rows 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from psycopg2 import sql  # noqa: E402

from civicflow_assets.database import connect, ensure_database, recreate_database  # noqa: E402
from civicflow_assets.publish.catalog import DatasetSpec, Organization  # noqa: E402
from civicflow_assets.publish.ckan_server import ckan_connection  # noqa: E402
from civicflow_assets.publish.client import CkanClient  # noqa: E402
from civicflow_assets.publish.publisher import PublishContext, publish_dataset  # noqa: E402
from civicflow_assets.publish.resources import local_datastore_write_url  # noqa: E402
from civicflow_assets.publish.table import TIMEZONE, describe_table  # noqa: E402
from civicflow_assets.settings import load_settings  # noqa: E402

SHARED = REPO.parent / "shared"
POTHOLES = SHARED / "data" / "chattanooga" / "311" / "potholes_distressed_pavement_2x73-xesh.csv"
BENCH_DB = "civicflow_bench_publish"
NAIVE_BATCH = 500
STAMP = "MM/DD/YYYY HH12:MI:SS AM"

BUILD_SQL = """
create schema if not exists bench;
drop table if exists bench.potholes_text, bench.pub_requests;
create table bench.potholes_text (service_request_key text, created_date text, request_type text, description text,
  request_type_code text, status_code text, intake_form text, days_to_complete text, sla_fy_2019 text,
  on_time_indicator text, completed_at text, due_at text, ispublic text, council_district text, loc text);
"""
RESAMPLE_SQL = f"""
set time zone '{TIMEZONE}';
create table bench.pub_requests as
with source as (
    select row_number() over (order by service_request_key) as n, *,
        to_timestamp(created_date, '{STAMP}') as created,
        to_timestamp(nullif(completed_at, ''), '{STAMP}') as closed,
        to_timestamp(nullif(due_at, ''), '{STAMP}') as due
    from bench.potholes_text
), sized as (select count(*) as total from source)
select
    'bench:' || g as "RequestId",
    'chattanooga_311_potholes'::text as "SourceSystem",
    s.service_request_key as "ServiceRequestId",
    case s.request_type when 'Pothole' then 'Potholes' else s.request_type end as "RequestType",
    nullif(s.request_type_code, '') as "RequestTypeCode",
    case when s.status_code in ('O-CLOSED', 'CLOSED') then 'closed' when s.status_code in ('O-NEW', 'O-OPEN')
         then 'open' else 'other' end as "Status",
    nullif(s.status_code, '') as "StatusCode",
    nullif(s.intake_form, '') as "IntakeChannel",
    s.created as "CreatedDate", s.due as "DueDate", s.closed as "ClosedDate",
    greatest(s.created, s.closed) as "ModifiedDate",
    date_trunc('month', s.created)::date as "CreatedMonth",
    nullif(s.days_to_complete, '')::numeric as "DaysToComplete",
    nullif(s.sla_fy_2019, '')::int as "SlaDays",
    case s.on_time_indicator when 'Yes' then true when 'No' then false end as "OnTime",
    nullif(s.council_district, '') as "CouncilDistrict",
    st_snaptogrid(st_geomfromtext(nullif(s.loc, ''), 4326), 0.001)::geometry(Point, 4326) as "GeneralizedLocation",
    s.description as "Description"
from generate_series(1, %(rows)s) as g
cross join sized
join source s on s.n = 1 + (g::bigint * 7919) %% sized.total;
alter table bench.pub_requests add primary key ("RequestId");
analyze bench.pub_requests;
"""


def bench_url() -> str:
    return recreate_database(ensure_database(load_settings()), BENCH_DB)


def build_table(url: str, rows: int) -> float:
    started = time.monotonic()
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(BUILD_SQL)
        with POTHOLES.open("rb") as handle:
            cur.copy_expert("copy bench.potholes_text from stdin with (format csv, header true)", handle)
        cur.execute(RESAMPLE_SQL, {"rows": rows})
    return time.monotonic() - started


def spec_for(name: str) -> DatasetSpec:
    return DatasetSpec(
        name="bench_requests", table="bench.pub_requests", ckan_name=name, title="Benchmark: 311 requests",
        description="1,000,000 requests resampled from the real Chattanooga pothole export.", owner="CivicFlow bench",
        update_frequency="daily", key=("RequestId",), modified_field="ModifiedDate", created_field="CreatedDate",
        temporal_field="CreatedDate", geometry_field="GeneralizedLocation", contact_email="bench@civicflow.invalid")


def naive(client: CkanClient, url: str, package_id: str, rows: int, batch: int, method: str) -> float:
    """datastore_upsert in `batch`-row calls into a table CKAN creates the same way; rows per second."""
    with connect(url) as conn:
        table = describe_table(conn, spec_for("unused"))
        created = client.call("datastore_create", {
            "resource": {"package_id": package_id, "name": f"naive {method} {batch}"}, "force": True,
            "fields": table.datastore_fields(), "primary_key": [table.key_column]})
        with conn.cursor(name="naive") as cur:
            cur.itersize = batch
            cur.execute(sql.SQL("select row_to_json(x)::text from (select {} from {} t limit %s) x").format(
                table.json_select("t"), table.relation), (rows,))
            started = time.monotonic()
            sent = 0
            while records := cur.fetchmany(batch):
                client.call("datastore_upsert", {"resource_id": created["resource_id"], "method": method,
                                                 "force": True, "records": [json.loads(r[0]) for r in records]})
                sent += len(records)
            return sent / (time.monotonic() - started)


def change_one_percent(url: str, rows: int) -> dict[str, int]:
    share = rows // 100
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute('update bench.pub_requests set "Status" = \'closed\', "ModifiedDate" = now() '
                    'where "RequestId" in (select "RequestId" from bench.pub_requests tablesample system (2) '
                    'order by random() limit %s)', (share,))
        changed = cur.rowcount
        cur.execute('insert into bench.pub_requests select \'bench:new-\' || "RequestId", "SourceSystem", '
                    '"ServiceRequestId", "RequestType", "RequestTypeCode", \'open\', \'O-NEW\', "IntakeChannel", now(),'
                    ' "DueDate", null, now(), "CreatedMonth", null, "SlaDays", null, "CouncilDistrict", '
                    '"GeneralizedLocation", "Description" from bench.pub_requests tablesample system (2) limit %s',
                    (share,))
        new = cur.rowcount
        cur.execute('delete from bench.pub_requests where "RequestId" in (select "RequestId" from '
                    'bench.pub_requests where "RequestId" not like \'bench:new-%%\' and "Status" <> \'closed\' '
                    'limit %s)', (share // 10,))
        deleted = cur.rowcount
    return {"changed": changed, "new": new, "deleted": deleted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=20_000)
    parser.add_argument("--api-rows", type=int, default=50_000)
    args = parser.parse_args()

    url = bench_url()
    built = build_table(url, args.rows)
    print(f"table: {args.rows:,} rows resampled from the real pothole export in {built:.1f}s")
    ckan_url, token = ckan_connection()
    datastore = local_datastore_write_url()
    organization = Organization("civicflow-bench", "CivicFlow benchmarks")
    name = f"bench-requests-{uuid.uuid4().hex[:8]}"
    spec = spec_for(name)
    results: dict[str, float] = {}
    with CkanClient(ckan_url, token) as client:
        try:
            def publish(**kwargs) -> tuple[float, object]:
                started = time.monotonic()
                publication = publish_dataset(spec, PublishContext(url, client, organization, datastore, files=False,
                                                                   run_id="bench", **kwargs))
                return time.monotonic() - started, publication

            seconds, first = publish()
            datastore_outcome = next(o for o in first.outcomes if o.role == "datastore")
            results["first_seconds"] = seconds
            results["first_rate"] = args.rows / seconds
            print(f"first publication ({datastore_outcome.method}): {seconds:.1f}s, {args.rows / seconds:,.0f} rows/s; "
                  f"steps {datastore_outcome.details.get('seconds')}")

            seconds, nothing = publish()
            print(f"nothing changed: {seconds:.1f}s, sent: {[o.role for o in nothing.sent] or 'nothing'}")
            results["nothing_seconds"] = seconds

            changes = change_one_percent(url, args.rows)
            seconds, delta = publish()
            outcome = next(o for o in delta.outcomes if o.role == "datastore")
            print(f"1% delta ({changes}): {seconds:.1f}s; DataStore inserted {outcome.rows_inserted:,}, updated "
                  f"{outcome.rows_updated:,}, deleted {outcome.rows_deleted:,}; steps {outcome.details.get('seconds')}")
            results["delta_seconds"] = seconds

            package_id = first.package_id
            results["naive_rate"] = naive(client, url, package_id, args.naive_rows, NAIVE_BATCH, "upsert")
            print(f"naive datastore_upsert, {NAIVE_BATCH}-row calls: {results['naive_rate']:,.0f} rows/s on "
                  f"{args.naive_rows:,} rows -> {args.rows / results['naive_rate'] / 60:.1f} min for {args.rows:,}")
            results["api_rate"] = naive(client, url, package_id, args.api_rows, 10_000, "insert")
            print(f"API fallback, 10,000-row inserts: {results['api_rate']:,.0f} rows/s on {args.api_rows:,} rows")
        finally:
            with contextlib.suppress(Exception):
                client.call("dataset_purge", {"id": name})
    ratio = results["first_rate"] / results["naive_rate"]
    print()
    verdict = "OK" if ratio >= 10 else "MISSED"
    print(f"first load: {results['first_seconds']:.1f}s = {results['first_rate']:,.0f} rows/s, "
          f"{ratio:.1f}x naive ({results['naive_rate']:,.0f} rows/s)   target >= 10x: {verdict}")
    print(f"1% delta: {results['delta_seconds']:.1f}s   target < 30 s: "
          f"{'OK' if results['delta_seconds'] < 30 else 'MISSED'}")
    print(f"no change: {results['nothing_seconds']:.1f}s")


if __name__ == "__main__":
    main()
