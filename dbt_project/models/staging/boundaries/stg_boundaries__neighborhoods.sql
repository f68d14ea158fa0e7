with

source as (

    select * from {{ source('boundaries', 'neighborhoods') }}

),

renamed as (

    select
        name as neighborhood,
        -- The description is HTML with association contacts: kept for reference, not for publication.
        description_html,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
