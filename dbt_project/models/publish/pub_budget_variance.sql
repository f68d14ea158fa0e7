-- budget_variance as published: small cells suppressed and flagged (see checks/datasets.yaml, macros/pii.sql).
{%- set mart = ref('budget_variance') %}
{{ publish_dataset('budget_variance', mart, relation_columns(mart)) }}
