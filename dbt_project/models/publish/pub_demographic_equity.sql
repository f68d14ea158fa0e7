-- demographic_equity as published: small cells suppressed and flagged (see checks/datasets.yaml, macros/pii.sql).
{%- set mart = ref('demographic_equity') %}
{{ publish_dataset('demographic_equity', mart, relation_columns(mart)) }}
