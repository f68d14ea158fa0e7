-- ACS estimates on 2020 census tracts, one row per 2020 tract.
--
-- The Census Data API (when configured) answers on 2020 tracts directly and with margins of error: its figures
-- are used as they are. Otherwise the 2017/2018 ACS files, published on 2010 tracts, are allocated through the
-- area-weighted crosswalk: counts as sum(count_2010 * area_weight); margins of error of allocated counts with the
-- Census Bureau's approximation for sums, sqrt(sum((moe * area_weight)^2)); the median household income as the
-- population-weighted mean of the 2010 tracts' medians (a median cannot be allocated; no margin given).
-- Each tract's population-weighted centre is the mean of its overlaps' centres weighted by their allocated
-- population, or its centroid when no population was allocated to it.
{{
    config(
        indexes=[
            {'columns': ['tract_geoid'], 'unique': true},
            {'columns': ['geom'], 'type': 'gist'},
            {'columns': ['population_centre'], 'type': 'gist'},
        ],
    )
}}

with

tracts_2020 as (

    select * from {{ ref('stg_census__tracts_2020') }}

),

tracts_2010 as (

    select * from {{ ref('stg_census__tracts_2010') }}

),

acs_2017 as (

    select * from {{ ref('stg_census__acs_tracts_2017') }}

),

acs_api as (

    select * from {{ ref('stg_census__acs_tracts_api') }}

),

crosswalk as (

    select * from {{ ref('int_tracts__crosswalk_2010_2020') }}

),

acs_2017_by_geoid as (

    select
        tracts_2010.tract_geoid,
        acs_2017.*
    from acs_2017
    inner join tracts_2010 on acs_2017.tract_code = tracts_2010.tract_code

),

allocated_pieces as (

    select
        crosswalk.tract_geoid_2020,
        crosswalk.area_weight,
        crosswalk.overlap_centre,
        acs.population * crosswalk.area_weight as population,
        acs.median_household_income,
        acs.poverty_universe * crosswalk.area_weight as poverty_universe,
        acs.below_poverty * crosswalk.area_weight as below_poverty,
        acs.below_poverty_moe * crosswalk.area_weight as below_poverty_moe,
        acs.race_total_population * crosswalk.area_weight as race_total_population,
        acs.white_non_hispanic * crosswalk.area_weight as white_non_hispanic
    from crosswalk
    inner join acs_2017_by_geoid as acs on crosswalk.tract_geoid_2010 = acs.tract_geoid

),

allocated as (

    select
        tract_geoid_2020 as tract_geoid,
        sum(population) as population,
        sum(median_household_income * population)
        / nullif(sum(population) filter (where median_household_income is not null), 0)
            as median_household_income,
        sum(poverty_universe) as poverty_universe,
        sum(below_poverty) as below_poverty,
        sqrt(sum(below_poverty_moe ^ 2)) as below_poverty_moe,
        sum(race_total_population) as race_total_population,
        sum(white_non_hispanic) as white_non_hispanic,
        st_setsrid(
            st_makepoint(
                sum(st_x(overlap_centre) * population) / nullif(sum(population), 0),
                sum(st_y(overlap_centre) * population) / nullif(sum(population), 0)
            ),
            4326
        ) as population_centre
    from allocated_pieces
    group by tract_geoid_2020

),

chosen as (

    select
        tracts_2020.tract_geoid,
        tracts_2020.tract_code,
        case when acs_api.tract_geoid is not null then 'acs_api' else 'acs_2017_crosswalk' end as demographics_source,
        case when acs_api.tract_geoid is not null then acs_api.population else allocated.population end as population,
        acs_api.population_moe,
        case
            when acs_api.tract_geoid is not null then acs_api.median_household_income
            else allocated.median_household_income
        end as median_household_income,
        acs_api.median_household_income_moe,
        case
            when acs_api.tract_geoid is not null then acs_api.poverty_universe else allocated.poverty_universe
        end as poverty_universe,
        case
            when acs_api.tract_geoid is not null then acs_api.below_poverty else allocated.below_poverty
        end as below_poverty,
        case
            when acs_api.tract_geoid is not null then acs_api.below_poverty_moe else allocated.below_poverty_moe
        end as below_poverty_moe,
        case
            when acs_api.tract_geoid is not null then acs_api.race_total else allocated.race_total_population
        end as race_total_population,
        case
            when acs_api.tract_geoid is not null then acs_api.white_non_hispanic else allocated.white_non_hispanic
        end as white_non_hispanic,
        coalesce(allocated.population_centre, st_centroid(tracts_2020.geom))::geometry(Point, 4326)
            as population_centre,
        case
            when allocated.population_centre is not null then 'population_weighted' else 'centroid'
        end as centre_method,
        tracts_2020.geom

    from tracts_2020
    left join allocated on tracts_2020.tract_geoid = allocated.tract_geoid
    left join acs_api on tracts_2020.tract_geoid = acs_api.tract_geoid

),

final as (

    select
        *,
        100.0 * below_poverty / nullif(poverty_universe, 0) as poverty_rate_pct,
        100.0 * (1 - white_non_hispanic / nullif(race_total_population, 0)) as minority_share_pct
    from chosen

)

select * from final
