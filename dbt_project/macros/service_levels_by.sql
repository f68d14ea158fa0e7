{#-
    A service-level mart: request type x <area> x month, from fct_service_requests, with its config.

    area_column: the fact's column naming the area ('"CouncilDistrict"' or '"TractGeoid"'), and the mart's column
    too; requests without one form their own group (area null). Months are local calendar months (CreatedMonth / ClosedMonth). Each
    request type and area gets every month from its first request to the last month in the data, so that the
    backlog is there for quiet months too: backlog at month end = requests opened up to then - requests closed.
    Closed requests, hours to close and on-time % count the requests that left the backlog in the month.
-#}
{% macro service_levels_by(area_column) %}

{#- For the model's transaction: no JIT (generate_series' default estimate makes the planner expect 100 times
    more rows and spend seconds compiling), and memory to sort a million requests in place. #}
{{
    config(
        indexes=[
            {'columns': ['"RequestType"', area_column, '"Month"'], 'unique': true},
            {'columns': [area_column, '"Month"']},
            {'columns': ['"Month"']},
        ],
        pre_hook=["set local jit = off", "set local work_mem = '256MB'"],
        post_hook=["{{ grant_analyst_access(this) }}"],
    )
}}

with

-- Read twice (opened, closed): straight from the fact's columns rather than a materialised copy of them.
requests as not materialized (

    -- Grouped in the "C" collation: byte-wise comparisons sort a million keys several times faster.
    select
        "RequestType" collate "C" as request_type,
        {{ area_column }} collate "C" as area,
        "CreatedMonth" as created_month,
        "ClosedMonth" as closed_month,
        "HoursToClose" as hours_to_close,
        "OnTime" as on_time
    from {{ ref('fct_service_requests') }}

),

opened as (

    select
        request_type,
        coalesce(area, '') as area_key,
        created_month as month,
        count(*) as requests_opened
    from requests
    group by request_type, coalesce(area, ''), created_month

),

closed as (

    select
        request_type,
        coalesce(area, '') as area_key,
        closed_month as month,
        count(*) as requests_closed,
        percentile_cont(0.5) within group (order by hours_to_close) as median_hours_to_close,
        percentile_cont(0.9) within group (order by hours_to_close) as p90_hours_to_close,
        count(on_time) as requests_with_sla_outcome,
        100.0 * count(*) filter (where on_time) / nullif(count(on_time), 0) as on_time_pct
    from requests
    where closed_month is not null
    group by request_type, coalesce(area, ''), closed_month

),

last_month as (

    select max(month) as month
    from (
        select month from opened
        union all
        select month from closed
    ) as months

),

series as (

    select
        request_type,
        area_key,
        min(month) as first_month
    from opened
    group by request_type, area_key

),

spine as (

    select
        series.request_type,
        series.area_key,
        months.month::date as month
    from series
    cross join last_month
    cross join lateral generate_series(series.first_month, last_month.month, interval '1 month') as months (month)

),

joined as (

    select
        spine.request_type collate "default" as request_type,
        nullif(spine.area_key, '') collate "default" as area,
        spine.month,
        coalesce(opened.requests_opened, 0) as requests_opened,
        coalesce(closed.requests_closed, 0) as requests_closed,
        closed.median_hours_to_close,
        closed.p90_hours_to_close,
        coalesce(closed.requests_with_sla_outcome, 0) as requests_with_sla_outcome,
        closed.on_time_pct
    from spine
    left join opened
        on
            spine.request_type = opened.request_type
            and spine.area_key = opened.area_key
            and spine.month = opened.month
    left join closed
        on
            spine.request_type = closed.request_type
            and spine.area_key = closed.area_key
            and spine.month = closed.month

),

final as (

    select
        *,
        sum(requests_opened - requests_closed) over (
            partition by request_type, area
            order by month
            rows between unbounded preceding and current row
        ) as open_backlog_at_month_end
    from joined

)

select
    request_type as "RequestType",
    area as {{ area_column }},
    month as "Month",
    requests_opened as "RequestsOpened",
    requests_closed as "RequestsClosed",
    median_hours_to_close as "MedianHoursToClose",
    p90_hours_to_close as "P90HoursToClose",
    requests_with_sla_outcome as "RequestsWithSlaOutcome",
    on_time_pct as "OnTimePct",
    open_backlog_at_month_end as "OpenBacklogAtMonthEnd"
from final

{% endmacro %}
