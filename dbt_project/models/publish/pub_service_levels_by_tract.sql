-- service_levels_by_tract as published: small cells suppressed and flagged (see checks/datasets.yaml, macros/pii.sql).
{%- set mart = ref('service_levels_by_tract') %}
{{ publish_dataset('service_levels_by_tract', mart, relation_columns(mart)) }}
