-- service_coverage as published: small cells suppressed and flagged (see checks/datasets.yaml, macros/pii.sql).
{%- set mart = ref('service_coverage') %}
{{ publish_dataset('service_coverage', mart, relation_columns(mart)) }}
