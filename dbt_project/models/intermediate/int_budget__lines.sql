-- Every budget and spending line of every city in one shape, with the city, a normalised department name
-- (seed department_names: "Youth & Family" is "Youth & Family Development") and the fiscal year.
--
--   * Chattanooga operating budget FY2015-2021 and FY2024-2025 (the "operating expenses" extract has the same
--     recommended/approved layout: budgets, not spending). Budgeted = amended, else approved, else recommended
--     (FY2024 has no approved amounts; only FY2021 has amendments). No line-item actuals.
--   * Chattanooga general ledger: the only actuals, and only for a few revenue accounts (sales tax,
--     hotel/motel, short-term vacation rentals), without a department: one revenue line per account and
--     accounting period (period_month), kept for the fiscal years the city also has a budget for. The extract
--     never has a July period, so no fiscal year is complete: the mart reports how many months an actual covers.
--   * Boston: FY2022-2023 actual expenses and FY2024-2025 budgets per department ("#Missing" is null).
with

operating_budget_lines as (

    select * from {{ ref('stg_budget__operating_budget_lines') }}

),

department_actuals as (

    select * from {{ ref('stg_budget__department_actuals') }}

),

ledger_activity as (

    select * from {{ ref('stg_budget__ledger_activity') }}

),

department_names as (

    select * from {{ ref('department_names') }}

),

source_systems as (

    select * from {{ ref('source_systems') }}

),

operating_lines as (

    select
        source_system || ':' || budget_line_id as line_id,
        source_system,
        department as source_department,
        coalesce(fund, '(not specified)') as fund,
        fiscal_year,
        'expense' as line_type,
        recommended_amount,
        approved_amount,
        amended_amount,
        coalesce(amended_amount, approved_amount, recommended_amount) as budgeted_amount,
        null::numeric as actual_amount,
        null::date as period_month
    from operating_budget_lines

),

boston_lines as (

    select
        source_system || ':' || budget_line_id || ':' || fiscal_year as line_id,
        source_system,
        department as source_department,
        '(not specified)' as fund,
        fiscal_year,
        'expense' as line_type,
        null::numeric as recommended_amount,
        null::numeric as approved_amount,
        null::numeric as amended_amount,
        budgeted_amount,
        actual_amount,
        null::date as period_month
    from department_actuals

),

budget_lines as (

    select * from operating_lines

    union all

    select * from boston_lines

),

budget_lines_with_city as (

    select
        budget_lines.*,
        coalesce(source_systems.city, budget_lines.source_system) as city
    from budget_lines
    left join source_systems on budget_lines.source_system = source_systems.source_system

),

budgeted_years as (

    select distinct
        city,
        fiscal_year
    from budget_lines_with_city
    where budgeted_amount is not null

),

ledger_lines as (

    select
        ledger_activity.source_system || ':' || ledger_activity.ledger_line_id as line_id,
        ledger_activity.source_system,
        '(general ledger revenue accounts)' as source_department,
        'Fund ' || ledger_activity.fund_code as fund,
        -- Fiscal years are named by the calendar year they end in (FY2019: July 2018 to June 2019).
        extract(year from ledger_activity.period_end)::integer
        + case
            when extract(month from ledger_activity.period_end) >= coalesce(source_systems.fiscal_year_start_month, 1)
                and coalesce(source_systems.fiscal_year_start_month, 1) > 1
                then 1
            else 0
        end as fiscal_year,
        'revenue' as line_type,
        null::numeric as recommended_amount,
        null::numeric as approved_amount,
        null::numeric as amended_amount,
        null::numeric as budgeted_amount,
        ledger_activity.net_activity as actual_amount,
        date_trunc('month', ledger_activity.period_end)::date as period_month,
        coalesce(source_systems.city, ledger_activity.source_system) as city
    from ledger_activity
    left join source_systems on ledger_activity.source_system = source_systems.source_system

),

-- Ledger actuals only for the fiscal years in which the city also budgeted.
overlapping_ledger_lines as (

    select ledger_lines.*
    from ledger_lines
    inner join budgeted_years
        on
            ledger_lines.city = budgeted_years.city
            and ledger_lines.fiscal_year = budgeted_years.fiscal_year

),

unioned as (

    select * from budget_lines_with_city

    union all

    select * from overlapping_ledger_lines

),

final as (

    select
        unioned.line_id,
        unioned.source_system,
        unioned.city,
        unioned.source_department,
        coalesce(department_names.department, unioned.source_department) as department,
        unioned.fund,
        unioned.fiscal_year,
        unioned.line_type,
        unioned.recommended_amount,
        unioned.approved_amount,
        unioned.amended_amount,
        unioned.budgeted_amount,
        unioned.actual_amount,
        unioned.period_month

    from unioned
    left join department_names on unioned.source_department = department_names.source_name

)

select * from final
