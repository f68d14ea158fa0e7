with

source as (

    select * from {{ source('boundaries', 'council_districts') }}

),

renamed as (

    select
        district as council_district,
        representative,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
