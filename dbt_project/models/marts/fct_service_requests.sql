-- One row per 311 request from every source: dates, time to close against the request type's SLA, and where
-- it is (2020 tract, council district, neighborhood, a generalised point). Incremental: each run merges, on
-- RequestId, the requests whose ModifiedDate is later than the latest one already here; requests gone from
-- their source are deleted. DbtRunId records the dbt invocation that last wrote each row.
-- SLA seed or boundaries changed? Backfill the days concerned (below), or rebuild with --full-refresh.
-- At scale, partition it by CreatedMonth (--vars 'partition_fact_by_month: true'; macros/partition_by_month.sql):
-- a month's queries read only its partition, and old months can be detached without touching the rest. Off by
-- default: at a million requests the partitioned build is slower (bench/marts.py: +12 s full, +7 s incremental).
-- A partitioned table's unique index must hold the partition column; RequestId alone stays unique by its test.
-- A Dagster partition (a range of days) sets rebuild_from / rebuild_to: the requests created in it are merged again,
-- whatever their ModifiedDate (after an SLA change for those days, say). Ignored on a first build.
{% set partitioned = var('partition_fact_by_month', false) %}
{% set rebuild_from, rebuild_to = var('rebuild_from', none), var('rebuild_to', none) %}
{{
    config(
        materialized='incremental',
        unique_key='"RequestId"',
        incremental_strategy='merge',
        on_schema_change='fail',
        partition_by_month='"CreatedMonth"' if partitioned else none,
        indexes=[
            {'columns': ['"RequestId"', '"CreatedMonth"'] if partitioned else ['"RequestId"'], 'unique': true},
            {'columns': ['"CreatedMonth"']},
            {'columns': ['"CouncilDistrict"', '"CreatedMonth"']},
            {'columns': ['"TractGeoid"', '"CreatedMonth"']},
            {'columns': ['"RequestType"', '"CreatedMonth"']},
            {'columns': ['"Status"', '"TractGeoid"']},
            {'columns': ['"GeneralizedLocation"'], 'type': 'gist'},
        ],
        post_hook=[
            "{{ delete_vanished_rows(this, '\"RequestId\"', ref('int_service_requests__located'), 'request_id') }}",
            "{{ split_new_months(this, '\"CreatedMonth\"') }}",
            "{{ grant_analyst_access(this) }}",
            "{{ analyze_if_unanalyzed(this) }}",
        ],
    )
}}

with

requests as (

    select located.*
    from {{ ref('int_service_requests__located') }} as located
    {% if is_incremental() and rebuild_from %}
        where
            located.created_at >= '{{ rebuild_from }}'::timestamptz
            and located.created_at < '{{ rebuild_to }}'::timestamptz
    {% elif is_incremental() %}
        where located.modified_at > (select coalesce(max(facts."ModifiedDate"), '-infinity') from {{ this }} as facts)
    {% endif %}

),

request_types as (

    select * from {{ ref('request_types') }}

),

timed as (

    select
        requests.*,
        request_types.owning_department,
        request_types.sla_hours,
        (requests.created_at at time zone requests.local_timezone) as created_local,
        -- When the request left the backlog: its close time, never before it was created (14 real requests
        -- were completed "before" they were created), or its creation when it is closed without a close time.
        case
            when requests.closed_at is not null then greatest(requests.closed_at, requests.created_at)
            when requests.status = 'closed' then requests.created_at
        end as left_backlog_at,
        case
            when requests.closed_at >= requests.created_at
                then extract(epoch from requests.closed_at - requests.created_at)::double precision / 3600
        end as hours_to_close
    from requests
    left join request_types on requests.request_type = request_types.request_type

),

final as (

    select
        request_id as "RequestId",
        source_system as "SourceSystem",
        service_request_id as "ServiceRequestId",
        city as "City",
        request_type as "RequestType",
        request_type_code as "RequestTypeCode",
        department as "Department",
        division as "Division",
        owning_department as "OwningDepartment",
        status as "Status",
        status_code as "StatusCode",
        intake_channel as "IntakeChannel",
        created_at as "CreatedDate",
        due_at as "DueDate",
        closed_at as "ClosedDate",
        modified_at as "ModifiedDate",
        date_trunc('month', created_local)::date as "CreatedMonth",
        date_trunc('month', left_backlog_at at time zone local_timezone)::date as "ClosedMonth",
        extract(year from created_local)::integer
        + case
            when extract(month from created_local) >= fiscal_year_start_month and fiscal_year_start_month > 1
                then 1
            else 0
        end as "FiscalYear",
        hours_to_close as "HoursToClose",
        sla_hours as "SlaHours",
        hours_to_close <= sla_hours as "OnTime",
        council_district as "CouncilDistrict",
        tract_geoid as "TractGeoid",
        neighborhood as "Neighborhood",
        location is not null as "HasLocation",
        is_outside_city as "IsOutsideCity",
        is_within_1km_of_facility as "IsWithin1kmOfFacility",
        -- Published instead of the exact point: snapped to a 0.001 degree grid (about 110 m by 90 m here).
        st_snaptogrid(location, 0.001)::geometry(Point, 4326) as "GeneralizedLocation",
        '{{ invocation_id }}'::text as "DbtRunId"

    from timed

)

select * from final
