-- Service levels by request type x 2020 census tract x month: the measures of service_levels, by tract.
-- For this model's transaction: no JIT (generate_series' default estimate makes the planner expect 100 times
-- more rows and spend seconds compiling), and memory to sort a million requests in place.
{{
    config(
        indexes=[
            {'columns': ['"RequestType"', '"TractGeoid"', '"Month"'], 'unique': true},
            {'columns': ['"TractGeoid"', '"Month"']},
            {'columns': ['"Month"']},
        ],
        pre_hook=["set local jit = off", "set local work_mem = '256MB'"],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

{{ service_levels_by('"TractGeoid"') }}

select
    request_type as "RequestType",
    area as "TractGeoid",
    month as "Month",
    requests_opened as "RequestsOpened",
    requests_closed as "RequestsClosed",
    median_hours_to_close as "MedianHoursToClose",
    p90_hours_to_close as "P90HoursToClose",
    requests_with_sla_outcome as "RequestsWithSlaOutcome",
    on_time_pct as "OnTimePct",
    open_backlog_at_month_end as "OpenBacklogAtMonthEnd"
from final
