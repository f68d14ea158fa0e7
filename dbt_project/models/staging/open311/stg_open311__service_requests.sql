with

source as (

    select * from {{ source('open311', 'open311_requests') }}

),

renamed as (

    select
        service_request_id,
        'open311' as source_system,
        requested_at as created_at,
        coalesce(updated_at, requested_at) as updated_at,
        expected_at as due_at,
        case when lower(status) = 'closed' then updated_at end as closed_at,
        service_name as request_type,
        service_code as request_type_code,
        description,
        status as status_code,
        case lower(status) when 'closed' then 'closed' when 'open' then 'open' else 'other' end as status,
        agency_responsible as department,
        address,
        zipcode,
        location,
        _loaded_at as loaded_at

    from source

)

select * from renamed
