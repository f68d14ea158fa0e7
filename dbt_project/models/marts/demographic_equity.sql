-- Per 2020 census tract: who lives there (ACS, see int_tracts__acs_2020) and the 311 service they get.
--
-- Delay is measured against each request type's citywide median hours to close, so that a tract of sidewalk
-- requests (a year to fix) is not compared with a tract of potholes (a week): delay ratio = hours to close /
-- the type's median over all requests; a tract's MedianDelayRatio is the median over its closed requests.
-- Tracts are ranked into income quintiles by median household income (1 = lowest). EquityGapIndex, the same on
-- every row, is the median delay ratio of requests in quintile-1 tracts over that of quintile-5 tracts:
-- above 1, requests from the lowest-income tracts wait longer, relative to their type, than the highest.
-- For this model's transaction: no JIT (compiling the expressions costs more than it saves on three sorts of a
-- million requests), and memory to sort them in place.
{{
    config(
        indexes=[
            {'columns': ['"TractGeoid"'], 'unique': true},
            {'columns': ['"IncomeQuintile"']},
            {'columns': ['"Geometry"'], 'type': 'gist'},
        ],
        pre_hook=["set local jit = off", "set local work_mem = '256MB'"],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

with

tracts as (

    select * from {{ ref('int_tracts__acs_2020') }}

),

-- Read three times: straight from the fact's three columns rather than a materialised copy of all of them.
service_requests as not materialized (

    -- Grouped in the "C" collation: byte-wise comparisons sort a million keys several times faster.
    select
        "TractGeoid" collate "C" as "TractGeoid",
        "RequestType" collate "C" as "RequestType",
        "HoursToClose"
    from {{ ref('fct_service_requests') }}

),

type_medians as (

    select
        "RequestType" as request_type,
        percentile_cont(0.5) within group (order by "HoursToClose") as median_hours_to_close
    from service_requests
    where "HoursToClose" is not null
    group by "RequestType"

),

delays as (

    select
        service_requests."TractGeoid" as tract_geoid,
        service_requests."HoursToClose" / nullif(type_medians.median_hours_to_close, 0) as delay_ratio
    from service_requests
    inner join type_medians on service_requests."RequestType" = type_medians.request_type
    where service_requests."TractGeoid" is not null and service_requests."HoursToClose" is not null

),

tract_requests as (

    select
        "TractGeoid" as tract_geoid,
        count(*) as service_requests
    from service_requests
    where "TractGeoid" is not null
    group by "TractGeoid"

),

tract_delays as (

    select
        tract_geoid,
        count(delay_ratio) as requests_with_delay,
        percentile_cont(0.5) within group (order by delay_ratio) as median_delay_ratio
    from delays
    group by tract_geoid

),

quintiles as (

    select
        tract_geoid,
        ntile(5) over (order by median_household_income, tract_geoid) as income_quintile
    from tracts
    where median_household_income is not null

),

quintile_delays as (

    select
        quintiles.income_quintile,
        percentile_cont(0.5) within group (order by delays.delay_ratio) as median_delay_ratio
    from delays
    inner join quintiles on delays.tract_geoid = quintiles.tract_geoid
    group by quintiles.income_quintile

),

equity_gap as (

    select
        max(median_delay_ratio) filter (where income_quintile = 1)
        / nullif(max(median_delay_ratio) filter (where income_quintile = 5), 0) as equity_gap_index
    from quintile_delays

),

final as (

    select
        tracts.tract_geoid as "TractGeoid",
        tracts.tract_code as "TractCode",
        tracts.demographics_source as "DemographicsSource",
        round(tracts.population)::integer as "Population",
        tracts.population_moe as "PopulationMoe",
        round(tracts.median_household_income)::integer as "MedianHouseholdIncome",
        tracts.median_household_income_moe as "MedianHouseholdIncomeMoe",
        round(tracts.poverty_rate_pct::numeric, 2) as "PovertyRatePct",
        round(tracts.below_poverty_moe::numeric, 1) as "BelowPovertyMoe",
        round(tracts.minority_share_pct::numeric, 2) as "MinoritySharePct",
        quintiles.income_quintile as "IncomeQuintile",
        coalesce(tract_requests.service_requests, 0) as "ServiceRequests",
        round((1000.0 * coalesce(tract_requests.service_requests, 0) / nullif(tracts.population, 0))::numeric, 2)
            as "RequestsPer1000Residents",
        coalesce(tract_delays.requests_with_delay, 0) as "RequestsWithDelay",
        tract_delays.median_delay_ratio as "MedianDelayRatio",
        quintile_delays.median_delay_ratio as "QuintileMedianDelayRatio",
        equity_gap.equity_gap_index as "EquityGapIndex",
        tracts.geom as "Geometry"

    from tracts
    left join quintiles on tracts.tract_geoid = quintiles.tract_geoid
    left join tract_requests on tracts.tract_geoid = tract_requests.tract_geoid
    left join tract_delays on tracts.tract_geoid = tract_delays.tract_geoid
    left join quintile_delays on quintiles.income_quintile = quintile_delays.income_quintile
    cross join equity_gap

)

select * from final
