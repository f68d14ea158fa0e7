"""The days 311 requests are partitioned by, in the city's time zone: the raw Open311 asset re-reads the requests
opened on a range of them, and the fact re-derives the requests created on them (a backfill from the UI)."""

from dagster import BackfillPolicy, DailyPartitionsDefinition

REQUEST_DAYS = DailyPartitionsDefinition(start_date="2010-01-01", timezone="America/New_York", end_offset=1)
# A range of days is one run (one API window, one dbt merge), not a run per day.
ONE_RUN_PER_RANGE = BackfillPolicy.single_run()
