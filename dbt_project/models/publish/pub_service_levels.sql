-- service_levels as published: small cells suppressed and flagged (see checks/datasets.yaml, macros/pii.sql).
{%- set mart = ref('service_levels') %}
{{ publish_dataset('service_levels', mart, relation_columns(mart)) }}
