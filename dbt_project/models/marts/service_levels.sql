-- Service levels by request type x council district x month: requests opened and closed, median and 90th
-- percentile hours to close, on-time % against the type's SLA, open backlog at month end.
{{ service_levels_by('"CouncilDistrict"') }}
