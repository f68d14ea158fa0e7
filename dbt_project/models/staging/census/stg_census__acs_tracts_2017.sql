-- The 2017/2018 ACS files are all on 2010 tracts, one row per tract each: joined on the tract code.
with

income as (

    select * from {{ source('census', 'acs_median_household_income') }}

),

poverty as (

    select * from {{ source('census', 'acs_poverty') }}

),

race as (

    select * from {{ source('census', 'acs_race_ethnicity') }}

),

population as (

    select * from {{ source('census', 'acs_population') }}

),

occupancy as (

    select * from {{ source('census', 'acs_occupancy') }}

),

final as (

    select
        lpad(population.tract_code, 6, '0') as tract_code,
        population.population,
        income.median_household_income,
        income._nulled ->> 'median_household_income' as median_household_income_null_reason,
        poverty.poverty_universe,
        poverty.below_poverty,
        poverty.below_poverty_moe,
        poverty.poverty_rate_pct,
        race.total_population as race_total_population,
        race.white_non_hispanic,
        race.minority_pct,
        occupancy.housing_units,
        occupancy.vacant_units

    from population
    left join income on lpad(income.tract_code, 6, '0') = lpad(population.tract_code, 6, '0')
    left join poverty on lpad(poverty.tract_code, 6, '0') = lpad(population.tract_code, 6, '0')
    left join race on lpad(race.tract_code, 6, '0') = lpad(population.tract_code, 6, '0')
    left join occupancy on lpad(occupancy.tract_code, 6, '0') = lpad(population.tract_code, 6, '0')

)

select * from final
