with

source as (

    select * from {{ source('census', 'acs_tracts_api') }}

),

renamed as (

    select
        state_fips || county_fips || tract_code as tract_geoid,
        tract_code,
        name as tract_name,
        population,
        population_moe,
        median_household_income,
        median_household_income_moe,
        poverty_universe,
        below_poverty,
        below_poverty_moe,
        race_total,
        white_non_hispanic,
        _nulled as null_reasons

    from source

)

select * from renamed
