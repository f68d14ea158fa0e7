with

source as (

    select * from {{ source('boundaries', 'zip_codes') }}

),

renamed as (

    select
        zip_code,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
