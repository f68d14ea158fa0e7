-- Service levels by request type x council district x month: requests opened and closed, median and 90th
-- percentile hours to close, on-time % against the type's SLA, open backlog at month end.
-- For this model's transaction: no JIT (generate_series' default estimate makes the planner expect 100 times
-- more rows and spend seconds compiling), and memory to sort a million requests in place.
{{
    config(
        indexes=[
            {'columns': ['"RequestType"', '"CouncilDistrict"', '"Month"'], 'unique': true},
            {'columns': ['"CouncilDistrict"', '"Month"']},
            {'columns': ['"Month"']},
        ],
        pre_hook=["set local jit = off", "set local work_mem = '256MB'"],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

{{ service_levels_by('"CouncilDistrict"') }}

select
    request_type as "RequestType",
    area as "CouncilDistrict",
    month as "Month",
    requests_opened as "RequestsOpened",
    requests_closed as "RequestsClosed",
    median_hours_to_close as "MedianHoursToClose",
    p90_hours_to_close as "P90HoursToClose",
    requests_with_sla_outcome as "RequestsWithSlaOutcome",
    on_time_pct as "OnTimePct",
    open_backlog_at_month_end as "OpenBacklogAtMonthEnd"
from final
