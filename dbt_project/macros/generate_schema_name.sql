{#- Models go to the schema they name (staging, marts), not "<target>_<schema>": analysts grant on those. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
