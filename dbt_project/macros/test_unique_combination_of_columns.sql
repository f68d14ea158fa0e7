{#-
    Generic test: the listed columns together identify a row (the grain of a mart). Nulls count as a value, as in
    GROUP BY: two rows with the same request type and both without a district are duplicates.

        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: ['"RequestType"', '"CouncilDistrict"', '"Month"']
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as rows_with_this_key
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1

{% endtest %}
