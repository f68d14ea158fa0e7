-- Fire stations and youth centers in one table, as geometry (maps, joins) and geography (distances in metres).
{{
    config(
        indexes=[
            {'columns': ['facility_type', 'facility_id'], 'unique': true},
            {'columns': ['geom'], 'type': 'gist'},
            {'columns': ['geog'], 'type': 'gist'},
        ],
    )
}}

with

fire_stations as (

    select * from {{ ref('stg_boundaries__fire_stations') }}

),

youth_centers as (

    select * from {{ ref('stg_boundaries__youth_centers') }}

),

unioned as (

    select
        facility_type,
        facility_id::text as facility_id,
        facility_name,
        address,
        geom
    from fire_stations

    union all

    select
        facility_type,
        facility_id::text as facility_id,
        facility_name,
        address,
        geom
    from youth_centers

),

final as (

    select
        facility_type,
        facility_id,
        facility_name,
        address,
        geom::geometry(Point, 4326) as geom,
        geom::geography(Point, 4326) as geog

    from unioned
    where geom is not null

)

select * from final
