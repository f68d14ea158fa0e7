with

source as (

    select * from {{ source('census', 'census_tracts_2010') }}

),

renamed as (

    select
        -- The 2010 export writes the county as "65"; GEOIDs pad it to three digits.
        lpad(state_fips, 2, '0') || lpad(county_fips, 3, '0') || lpad(tract_code, 6, '0') as tract_geoid,
        lpad(tract_code, 6, '0') as tract_code,
        st_multi(geom)::geometry(MultiPolygon, 4326) as geom

    from source

)

select * from renamed
