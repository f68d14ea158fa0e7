with

source as (

    select * from {{ source('boundaries', 'youth_centers') }}

),

renamed as (

    select
        name as facility_id,
        'youth_center' as facility_type,
        name as facility_name,
        address,
        coalesce(geom, latlon_point)::geometry(Point, 4326) as geom

    from source

)

select * from renamed
