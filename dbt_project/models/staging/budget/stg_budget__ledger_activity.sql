with

source as (

    select * from {{ source('budget', 'general_ledger') }}

),

renamed as (

    select
        _row_key as ledger_line_id,
        _source as source_system,
        ledger_name,
        account_segments,
        split_part(account_segments, '.', 1) as fund_code,
        net_activity,
        -- Period names mix "APR-2019" and "Apr-2019"; ADJ-yyyy are year-end adjustment periods.
        initcap(period_name) as period_name,
        upper(period_name) like 'ADJ-%' as is_adjustment_period,
        period_start,
        period_end

    from source

)

select * from renamed
