with

source as (

    select * from {{ source('census', 'census_tracts_2020') }}

),

renamed as (

    select
        geoid as tract_geoid,
        tract_code,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
