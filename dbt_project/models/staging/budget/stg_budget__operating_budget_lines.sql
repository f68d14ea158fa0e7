with

source as (

    select * from {{ source('budget', 'operating_budget') }}

),

renamed as (

    select
        _row_key as budget_line_id,
        fiscal_year,
        service,
        department,
        program,
        expense_category,
        recommended_amount,
        approved_amount,
        amended_amount,
        fund,
        fund_type,
        line_description,
        expense_type,
        _source as source_system

    from source

)

select * from renamed
