-- The 2010 -> 2020 census tract crosswalk by area weighting: one row per (2010 tract, 2020 tract) pair that
-- overlap, with the share of the 2010 tract's area that lies in the 2020 tract. A count estimated on 2010 tracts
-- (the 2017 ACS) is allocated to 2020 tracts as count_2010 * area_weight. Areas in UTM zone 16N (EPSG:32616),
-- metres, which holds Hamilton County; the overlaps' centres feed the population-weighted tract centres.
{{
    config(
        indexes=[
            {'columns': ['tract_geoid_2010', 'tract_geoid_2020'], 'unique': true},
            {'columns': ['tract_geoid_2020']},
            {'columns': ['overlap_centre'], 'type': 'gist'},
        ],
    )
}}

with

tracts_2010 as (

    select * from {{ ref('stg_census__tracts_2010') }}

),

tracts_2020 as (

    select * from {{ ref('stg_census__tracts_2020') }}

),

projected_2010 as materialized (

    select
        tract_geoid,
        st_transform(geom, 32616) as geom
    from tracts_2010

),

projected_2020 as materialized (

    select
        tract_geoid,
        st_transform(geom, 32616) as geom
    from tracts_2020

),

tract_overlaps as (

    select
        projected_2010.tract_geoid as tract_geoid_2010,
        projected_2020.tract_geoid as tract_geoid_2020,
        st_area(projected_2010.geom) as area_2010_m2,
        st_intersection(projected_2010.geom, projected_2020.geom) as geom
    from projected_2010
    inner join projected_2020 on st_intersects(projected_2010.geom, projected_2020.geom)

),

final as (

    select
        tract_geoid_2010,
        tract_geoid_2020,
        st_area(geom) as overlap_area_m2,
        area_2010_m2,
        st_area(geom) / area_2010_m2 as area_weight,
        st_transform(st_centroid(geom), 4326)::geometry(Point, 4326) as overlap_centre

    from tract_overlaps
    -- Tracts that only touch share a line, not an area.
    where st_area(geom) > 0

)

select * from final
