-- Every 311 source in one request grain: the CSV exports (both Chattanooga schemas) and Open311.
-- A view: the incremental models downstream filter it on modified_at, and the filter reaches the raw tables.
{{ config(materialized='view') }}

with

city311_requests as (

    select * from {{ ref('stg_city311__service_requests') }}

),

open311_requests as (

    select * from {{ ref('stg_open311__service_requests') }}

),

department_names as (

    select * from {{ ref('department_names') }}

),

source_systems as (

    select * from {{ ref('source_systems') }}

),

unioned as (

    select
        source_system,
        service_request_id,
        created_at,
        due_at,
        closed_at,
        loaded_at,
        request_type,
        request_type_code,
        status,
        status_code,
        department,
        intake_channel,
        council_district as source_council_district,
        location
    from city311_requests

    union all

    select
        source_system,
        service_request_id,
        created_at,
        due_at,
        closed_at,
        loaded_at,
        request_type,
        request_type_code,
        status,
        status_code,
        department,
        null as intake_channel,
        null as source_council_district,
        location
    from open311_requests

),

final as (

    select
        -- Keys are unique within a source system, not across them (another city's Open311 ids may collide).
        unioned.source_system || ':' || unioned.service_request_id as request_id,
        unioned.source_system,
        unioned.service_request_id,
        source_systems.city,
        coalesce(source_systems.timezone, '{{ var("civicflow_timezone", "America/New_York") }}') as local_timezone,
        coalesce(source_systems.fiscal_year_start_month, 7) as fiscal_year_start_month,
        unioned.created_at,
        unioned.due_at,
        unioned.closed_at,
        -- Landing replaces a raw row only when its content changed, so its load time is when it last changed.
        unioned.loaded_at as modified_at,
        unioned.request_type,
        unioned.request_type_code,
        unioned.status,
        unioned.status_code,
        unioned.department as source_department,
        coalesce(department_names.department, unioned.department) as department,
        department_names.division,
        unioned.intake_channel,
        unioned.source_council_district,
        unioned.location

    from unioned
    left join department_names on unioned.department = department_names.source_name
    left join source_systems on unioned.source_system = source_systems.source_system

)

select * from final
