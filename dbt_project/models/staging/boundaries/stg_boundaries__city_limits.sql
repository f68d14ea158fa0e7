with

source as (

    select * from {{ source('boundaries', 'city_limits') }}

),

renamed as (

    select
        name as city_name,
        acres,
        pop_2000,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
