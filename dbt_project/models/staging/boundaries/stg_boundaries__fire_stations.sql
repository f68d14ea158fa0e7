with

source as (

    select * from {{ source('boundaries', 'fire_stations') }}

),

renamed as (

    select
        object_id as facility_id,
        'fire_station' as facility_type,
        name as facility_name,
        address,
        geom::geometry(Point, 4326) as geom

    from source

)

select * from renamed
