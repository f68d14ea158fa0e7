-- Each request placed by ST_Contains in its 2020 census tract, council district, neighborhood and the city
-- limits, against the subdivided boundaries; points outside every boundary (986 potholes geocoded to one spot in
-- Arkansas) are kept and flagged, never dropped. Incremental: only requests changed since the last run are placed.
--
-- Two join shapes, the same answer (see the point_in_piece macro):
--   * a full build walks the ~4,300 pieces and probes the requests' GiST index for each piece, so PostGIS
--     prepares each piece once for the hundreds of points in it (1,000,000 points: seconds, not minutes);
--   * an incremental run, with few changed requests, probes the pieces' GiST index once per request.
-- A request in two overlapping areas of one kind (neighborhood associations overlap; council districts in
-- slivers) gets the preferred one (int_boundaries.preference: the smallest neighborhood, else the lowest id).
-- Boundaries or seeds changed? Rebuild with --full-refresh: rows already placed are not revisited.
-- Planner settings for this model's transaction only: it cannot estimate the pieces-to-requests join (it expects
-- 15 times fewer pairs than the 3 million of a full build), so it would sort the pairs to group them instead of
-- hashing them, and on the real data spend 2 s of a 3 s build compiling expressions (JIT).
{{
    config(
        materialized='incremental',
        unique_key='request_id',
        incremental_strategy='merge',
        on_schema_change='fail',
        indexes=[
            {'columns': ['request_id'], 'unique': true},
            {'columns': ['modified_at']},
            {'columns': ['location'], 'type': 'gist'},
        ],
        pre_hook=["set local jit = off", "set local enable_sort = off", "set local work_mem = '256MB'"],
        post_hook=["{{ delete_vanished_rows(this, 'request_id', ref('int_service_requests__unioned'), 'request_id') }}"],
    )
}}

with

-- Full build: not materialised, so that each piece probes the raw tables' GiST index through it. Incremental
-- run: the few changed requests, read once and used three times.
requests as {{ 'materialized' if is_incremental() else 'not materialized' }} (

    select unioned.*
    from {{ ref('int_service_requests__unioned') }} as unioned
    {% if is_incremental() %}
        where unioned.modified_at > (select coalesce(max(located.modified_at), '-infinity') from {{ this }} as located)
    {% endif %}

),

pieces as (

    select * from {{ ref('int_boundaries_subdivided') }}

),

boundaries as (

    select * from {{ ref('int_boundaries') }}

),

facilities as (

    select * from {{ ref('int_facilities') }}

),

{% if is_incremental() %}

    piece_hits as (

        select
            requests.request_id,
            hit.boundary_type,
            hit.boundary_id,
            hit.preference
        from requests
        cross join lateral (
            select
                pieces.boundary_type,
                pieces.boundary_id,
                pieces.preference
            from pieces
            where {{ point_in_piece('pieces', 'requests.location', 'boundaries') }}
            -- A fence: keeps the lateral subquery, and so the join order, as written.
            offset 0  -- noqa: AM09
        ) as hit

    ),

{% else %}

    piece_hits as (

        select
            hit.request_id,
            pieces.boundary_type,
            pieces.boundary_id,
            pieces.preference
        from pieces
        cross join lateral (
            select requests.request_id
            from requests
            where {{ point_in_piece('pieces', 'requests.location', 'boundaries') }}
            -- A fence: keeps the lateral subquery, and so the join order, as written.
            offset 0  -- noqa: AM09
        ) as hit

    ),

{% endif %}

-- One row per placed request, in one pass of plain (hashable) aggregates. The preferred area of a kind is the
-- one with the lowest preference: compared as text, a zero-padded preference then the id picks it (arg-min).
placed as (

    select
        request_id,
        {%- for kind, column in [('council_district', 'council_district'), ('tract_2020', 'tract_geoid'),
                                 ('neighborhood', 'neighborhood')] %}
            substr(
                min(lpad(preference::text, 9, '0') || boundary_id) filter (where boundary_type = '{{ kind }}'), 10
            ) as {{ column }},
        {%- endfor %}
        bool_or(boundary_type = 'city_limits') as is_inside_city
    from piece_hits
    group by request_id

),

near_facilities as (

    select requests.request_id
    from requests
    where
        exists (
            select 1
            from facilities
            where st_dwithin(facilities.geog, requests.location::geography, 1000)
        )

),

final as (

    select
        requests.request_id,
        requests.source_system,
        requests.service_request_id,
        requests.city,
        requests.local_timezone,
        requests.fiscal_year_start_month,
        requests.created_at,
        requests.due_at,
        requests.closed_at,
        requests.modified_at,
        requests.request_type,
        requests.request_type_code,
        requests.status,
        requests.status_code,
        requests.source_department,
        requests.department,
        requests.division,
        requests.intake_channel,
        requests.source_council_district,
        requests.location::geometry(Point, 4326) as location,
        placed.council_district,
        placed.tract_geoid,
        placed.neighborhood,
        case
            when requests.location is not null then not coalesce(placed.is_inside_city, false)
        end as is_outside_city,
        case
            when requests.location is not null then near_facilities.request_id is not null
        end as is_within_1km_of_facility

    from requests
    left join placed on requests.request_id = placed.request_id
    left join near_facilities on requests.request_id = near_facilities.request_id

)

select * from final
