-- The boundaries cut into pieces of at most 64 vertices (ST_Subdivide), GiST-indexed: a point-in-polygon
-- test against a small piece whose box is tight is what keeps request placement fast on real boundaries
-- (the 9 real council districts hold 45,877 vertices). Only the GiST index: with a btree on boundary_type the
-- planner would scan every piece of a kind instead of probing the few whose box holds the point.
{{
    config(
        indexes=[
            {'columns': ['geom'], 'type': 'gist'},
        ],
    )
}}

with

boundaries as (

    select * from {{ ref('int_boundaries') }}

),

subdivided as (

    select
        boundary_type,
        boundary_id,
        preference,
        st_subdivide(geom, 64) as geom

    from boundaries

),

final as (

    select
        boundary_type,
        boundary_id,
        row_number() over (
            partition by boundary_type, boundary_id
            order by st_xmin(geom), st_ymin(geom), st_xmax(geom), st_ymax(geom)
        ) as piece_number,
        preference,
        geom::geometry(Polygon, 4326) as geom

    from subdivided

)

select * from final
