-- Per 2020 census tract: how far its residents' centre is from the nearest fire station and youth center, and
-- the share of the tract's 311 requests within 1 km of either kind of facility. Distances are geodesic metres
-- (geography) from the tract's population-weighted centre (its centroid where no population was allocated).
{{
    config(
        indexes=[
            {'columns': ['"TractGeoid"'], 'unique': true},
            {'columns': ['"PopulationCentre"'], 'type': 'gist'},
        ],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

with

tracts as (

    select * from {{ ref('int_tracts__acs_2020') }}

),

facilities as (

    select * from {{ ref('int_facilities') }}

),

service_requests as (

    select * from {{ ref('fct_service_requests') }}

),

nearest as (

    select distinct on (tracts.tract_geoid, facilities.facility_type)
        tracts.tract_geoid,
        facilities.facility_type,
        facilities.facility_name,
        st_distance(facilities.geog, tracts.population_centre::geography) as distance_m
    from tracts
    cross join facilities
    order by
        tracts.tract_geoid asc,
        facilities.facility_type asc,
        st_distance(facilities.geog, tracts.population_centre::geography) asc,
        facilities.facility_name asc

),

coverage as (

    select
        "TractGeoid" as tract_geoid,
        count(*) as service_requests,
        count(*) filter (where "IsWithin1kmOfFacility") as requests_within_1km
    from service_requests
    where "TractGeoid" is not null
    group by "TractGeoid"

),

final as (

    select
        tracts.tract_geoid as "TractGeoid",
        round(tracts.population)::integer as "Population",
        tracts.population_centre as "PopulationCentre",
        tracts.centre_method as "CentreMethod",
        fire_station.facility_name as "NearestFireStation",
        round(fire_station.distance_m::numeric, 1) as "NearestFireStationMetres",
        youth_center.facility_name as "NearestYouthCenter",
        round(youth_center.distance_m::numeric, 1) as "NearestYouthCenterMetres",
        coalesce(coverage.service_requests, 0) as "ServiceRequests",
        coalesce(coverage.requests_within_1km, 0) as "RequestsWithin1kmOfFacility",
        round(100.0 * coverage.requests_within_1km / nullif(coverage.service_requests, 0), 2)
            as "SharePctWithin1kmOfFacility"

    from tracts
    left join nearest as fire_station
        on tracts.tract_geoid = fire_station.tract_geoid and fire_station.facility_type = 'fire_station'
    left join nearest as youth_center
        on tracts.tract_geoid = youth_center.tract_geoid and youth_center.facility_type = 'youth_center'
    left join coverage on tracts.tract_geoid = coverage.tract_geoid

)

select * from final
