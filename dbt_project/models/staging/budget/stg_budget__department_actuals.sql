-- Boston's wide file (one column per year) unpivoted to one row per line and fiscal year.
with

source as (

    select * from {{ source('budget', 'budget_actuals') }}

),

unpivoted as (

    select _row_key as budget_line_id, cabinet, department, program, expense_category, 2022 as fiscal_year,
        null::numeric as budgeted_amount, fy22_actual as actual_amount
    from source
    union all
    select _row_key, cabinet, department, program, expense_category, 2023, null, fy23_actual
    from source
    union all
    select _row_key, cabinet, department, program, expense_category, 2024, fy24_appropriation, null
    from source
    union all
    select _row_key, cabinet, department, program, expense_category, 2025, fy25_budget, null
    from source

)

select * from unpivoted
