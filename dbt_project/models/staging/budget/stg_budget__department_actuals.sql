-- Boston's wide file (one column per year) unpivoted to one row per line and fiscal year.
with

source as (

    select * from {{ source('budget', 'budget_actuals') }}

),

unpivoted as (

    select
        _row_key as budget_line_id,
        _source as source_system,
        cabinet,
        department,
        program,
        expense_category,
        2022 as fiscal_year,
        null::numeric as budgeted_amount,
        fy22_actual as actual_amount
    from source

    union all

    select
        _row_key as budget_line_id,
        _source as source_system,
        cabinet,
        department,
        program,
        expense_category,
        2023 as fiscal_year,
        null::numeric as budgeted_amount,
        fy23_actual as actual_amount
    from source

    union all

    select
        _row_key as budget_line_id,
        _source as source_system,
        cabinet,
        department,
        program,
        expense_category,
        2024 as fiscal_year,
        fy24_appropriation as budgeted_amount,
        null::numeric as actual_amount
    from source

    union all

    select
        _row_key as budget_line_id,
        _source as source_system,
        cabinet,
        department,
        program,
        expense_category,
        2025 as fiscal_year,
        fy25_budget as budgeted_amount,
        null::numeric as actual_amount
    from source

)

select * from unpivoted
