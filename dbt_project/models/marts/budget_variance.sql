-- Budget against actual by city x department x fund x fiscal year x line type (expense, or revenue for the
-- Chattanooga general-ledger accounts), with year-over-year changes and, where a department owns 311 request
-- types (seed request_types), what it spent or budgeted per request of those types created in the year.
--
-- The real extracts rarely have both figures for one year: Chattanooga publishes budgets only (its ledger
-- extract covers a few revenue accounts), Boston publishes actuals for FY2022-2023 and budgets for FY2024-2025.
-- Variance and the favourable flag are null unless both are there; the year-over-year changes work either way.
-- The ledger extract never has a July period: ActualMonths says how many months an actual covers.
{{
    config(
        indexes=[
            {'columns': ['"City"', '"Department"', '"Fund"', '"FiscalYear"', '"LineType"'], 'unique': true},
            {'columns': ['"Department"', '"FiscalYear"']},
            {'columns': ['"FiscalYear"']},
        ],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

with

budget_lines as (

    select * from {{ ref('int_budget__lines') }}

),

service_requests as (

    select * from {{ ref('fct_service_requests') }}

),

by_year as (

    select
        city,
        department,
        fund,
        fiscal_year,
        line_type,
        sum(recommended_amount) as recommended_amount,
        sum(approved_amount) as approved_amount,
        sum(amended_amount) as amended_amount,
        sum(budgeted_amount) as budgeted_amount,
        sum(actual_amount) as actual_amount,
        -- Months the actual covers: ledger lines are monthly, the other actuals annual.
        case
            when count(actual_amount) = 0 then null
            when count(period_month) > 0 then count(distinct period_month)
            else 12
        end as actual_months,
        count(*) as source_lines
    from budget_lines
    group by city, department, fund, fiscal_year, line_type

),

owned_requests as (

    select
        "City" as city,
        "OwningDepartment" as department,
        "FiscalYear" as fiscal_year,
        count(*) as service_requests
    from service_requests
    where "OwningDepartment" is not null and "City" is not null
    group by "City", "OwningDepartment", "FiscalYear"

),

compared as (

    select
        this_year.*,
        this_year.actual_amount - this_year.budgeted_amount as variance,
        case
            when this_year.line_type = 'expense' then this_year.actual_amount <= this_year.budgeted_amount
            when this_year.line_type = 'revenue' then this_year.actual_amount >= this_year.budgeted_amount
        end as is_favorable,
        this_year.budgeted_amount - prior_year.budgeted_amount as budgeted_yoy_change,
        this_year.actual_amount - prior_year.actual_amount as actual_yoy_change,
        prior_year.budgeted_amount as prior_budgeted_amount,
        prior_year.actual_amount as prior_actual_amount
    from by_year as this_year
    left join by_year as prior_year
        on
            this_year.city = prior_year.city
            and this_year.department = prior_year.department
            and this_year.fund = prior_year.fund
            and this_year.line_type = prior_year.line_type
            and this_year.fiscal_year = prior_year.fiscal_year + 1

),

final as (

    select
        compared.city as "City",
        compared.department as "Department",
        compared.fund as "Fund",
        compared.fiscal_year as "FiscalYear",
        compared.line_type as "LineType",
        compared.budgeted_amount as "Budgeted",
        compared.actual_amount as "Actual",
        compared.actual_months as "ActualMonths",
        compared.variance as "Variance",
        round(100 * compared.variance / nullif(compared.budgeted_amount, 0), 2) as "VariancePct",
        compared.is_favorable as "IsFavorable",
        compared.budgeted_yoy_change as "BudgetedYoYChange",
        round(100 * compared.budgeted_yoy_change / nullif(compared.prior_budgeted_amount, 0), 2)
            as "BudgetedYoYChangePct",
        compared.actual_yoy_change as "ActualYoYChange",
        round(100 * compared.actual_yoy_change / nullif(compared.prior_actual_amount, 0), 2)
            as "ActualYoYChangePct",
        compared.recommended_amount as "RecommendedBudget",
        compared.approved_amount as "ApprovedBudget",
        compared.amended_amount as "AmendedBudget",
        compared.source_lines as "SourceLines",
        owned_requests.service_requests as "ServiceRequests",
        round(
            coalesce(compared.actual_amount, compared.budgeted_amount) / nullif(owned_requests.service_requests, 0),
            2
        ) as "CostPerServiceRequest"

    from compared
    left join owned_requests
        on
            compared.line_type = 'expense'
            and compared.city = owned_requests.city
            and compared.department = owned_requests.department
            and compared.fiscal_year = owned_requests.fiscal_year

)

select * from final
