{#-
    Generic test: every row satisfies a SQL boolean expression (rows where it is false fail; null counts as true,
    so pair it with not_null where a value is required). Model-level, or column-level where `{column}` in the
    expression stands for the quoted column.

        data_tests:
          - expression_is_true:
              arguments:
                expression: '"Budgeted" >= 0'
-#}
{% test expression_is_true(model, expression, column_name=none) %}

    {%- set predicate = expression | replace('{column}', column_name if column_name else '') -%}

    select *
    from {{ model }}
    where not ({{ predicate }})

{% endtest %}
