with

source as (

    select * from {{ source('city311', 'service_requests') }}

),

renamed as (

    select
        service_request_id,
        _source as source_system,
        created_at,
        due_at,
        closed_at,
        -- The legacy system (2003-2016) says "Pothole" where the current one says "Potholes".
        case request_type when 'Pothole' then 'Potholes' else request_type end as request_type,
        request_type_code,
        description,
        status_code,
        case
            when status_code in ('O-CLOSED', 'CLOSED') then 'closed'
            when status_code in ('O-NEW', 'O-OPEN', 'OPEN', 'NEW') then 'open'
            else 'other'
        end as status,
        department,
        intake_channel,
        days_to_complete,
        sla_days,
        on_time_indicator,
        is_public,
        nullif(council_district, '') as council_district,
        location,
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed
