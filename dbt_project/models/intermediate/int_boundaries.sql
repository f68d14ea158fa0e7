-- Every boundary a request is placed in, one row per area, whole (not subdivided): the reference the
-- subdivided pieces are checked against, and the source of each area's size.
{{
    config(
        indexes=[
            {'columns': ['boundary_type', 'boundary_id'], 'unique': true},
            {'columns': ['boundary_type', 'preference'], 'unique': true},
            {'columns': ['geom'], 'type': 'gist'},
        ],
    )
}}

with

council_districts as (

    select * from {{ ref('stg_boundaries__council_districts') }}

),

tracts_2020 as (

    select * from {{ ref('stg_census__tracts_2020') }}

),

neighborhoods as (

    select * from {{ ref('stg_boundaries__neighborhoods') }}

),

city_limits as (

    select * from {{ ref('stg_boundaries__city_limits') }}

),

unioned as (

    select
        'council_district' as boundary_type,
        council_district as boundary_id,
        geom
    from council_districts

    union all

    select
        'tract_2020' as boundary_type,
        tract_geoid as boundary_id,
        geom
    from tracts_2020

    union all

    select
        'neighborhood' as boundary_type,
        neighborhood as boundary_id,
        geom
    from neighborhoods

    union all

    select
        'city_limits' as boundary_type,
        city_name as boundary_id,
        geom
    from city_limits

),

measured as (

    select
        boundary_type,
        boundary_id,
        st_area(geom::geography) as area_m2,
        st_npoints(geom) as vertex_count,
        geom
    from unioned

),

final as (

    select
        boundary_type,
        boundary_id,
        -- Which area a point in two overlapping areas of one kind belongs to: the smallest neighborhood (the
        -- most local association), otherwise the lowest identifier. 1 is preferred.
        row_number() over (
            partition by boundary_type
            order by case when boundary_type = 'neighborhood' then area_m2 end asc, boundary_id asc
        )::integer as preference,
        area_m2,
        vertex_count,
        geom::geometry(MultiPolygon, 4326) as geom

    from measured

)

select * from final
