-- Boston's wide file (one column per year) unpivoted to one row per line and fiscal year: each year's column is
-- either the adopted budget or the actuals.
{%- set year_columns = [
    (2022, 'fy22_actual', 'actual'),
    (2023, 'fy23_actual', 'actual'),
    (2024, 'fy24_appropriation', 'budgeted'),
    (2025, 'fy25_budget', 'budgeted'),
] %}

with

source as (

    select * from {{ source('budget', 'budget_actuals') }}

),

unpivoted as (

    {%- for year, column, kind in year_columns %}

        select
            _row_key as budget_line_id,
            _source as source_system,
            cabinet,
            department,
            program,
            expense_category,
            {{ year }} as fiscal_year,
            {{ column if kind == 'budgeted' else 'null::numeric' }} as budgeted_amount,
            {{ column if kind == 'actual' else 'null::numeric' }} as actual_amount
        from source
        {% if not loop.last %}union all{% endif %}

    {%- endfor %}

)

select * from unpivoted
