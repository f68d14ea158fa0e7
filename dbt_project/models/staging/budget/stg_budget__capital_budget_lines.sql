with

source as (

    select * from {{ source('budget', 'capital_budget') }}

),

renamed as (

    select
        _row_key as capital_line_id,
        fiscal_year,
        service,
        department,
        project,
        project_id,
        fund_type,
        fund,
        actuals_to_date,
        approved_amount

    from source

)

select * from renamed
