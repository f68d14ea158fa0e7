{#-
    The privacy transformation of the publish models (rules PII1-PII4), as SQL that runs where the data is.

    Thresholds, patterns and each dataset's privacy fields come from civicflow_assets/checks/settings.yaml and
    datasets.yaml, which the raw/publish_policy asset stores in raw.publish_policy; publish_policy() reads that
    row when a model compiles, so the compiled SQL (target/compiled) shows every pattern and list it applied.

    publish_dataset(name, relation, columns) is the whole select of a publish model:
      - PII4: record-level datasets drop the sensitive request types (they are published only in aggregates);
      - PII1: free text has emails, card numbers, SSNs, phone numbers and names after "my name is" replaced by
        [redacted-email], [redacted-card], [redacted-ssn], [redacted-phone], [redacted-name], and addresses where
        someone says they live generalized to the block; RedactionCount says how many values were replaced;
      - PII2: person-related records (request type not a public asset) have every street address in free text
        and every address field generalized to the block (1400 BLOCK OF MAIN ST), and points rounded;
      - PII3: counts over people below small_cell_min are null, with a flag column; values derived from them too.
-#}

{% macro publish_policy() %}
    {#- source() is called before the execute guard, so that dbt records the dependency when it parses. -#}
    {%- set relation = source('civicflow_policy', 'publish_policy') -%}
    {%- if not execute -%}
        {{ return({}) }}
    {%- endif -%}
    {%- if adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        {#- Nothing is published without the policy: the publish models build empty (and say so). -#}
        {% do exceptions.warn(relation ~ " does not exist: the publish models publish nothing until the"
            ~ " raw/publish_policy asset is materialized") %}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query('select policy::text from ' ~ relation ~ ' order by loaded_at desc limit 1') -%}
    {%- if result | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            relation ~ " is empty: materialize the raw/publish_policy asset before the publish models") }}
    {%- endif -%}
    {%- set policy = fromjson(result.columns[0].values()[0]) -%}
    {%- if policy.get('version') != 2 -%}
        {{ exceptions.raise_compiler_error(relation ~ " holds a policy of another version ("
            ~ policy.get('version') ~ ", expected 2): materialize raw/publish_policy again") }}
    {%- endif -%}
    {{ return(policy) }}
{% endmacro %}


{% macro sql_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}


{% macro sql_text_array(values) -%}
    array[{% for value in values %}{{ sql_literal(value) }}{{ ", " if not loop.last }}{% endfor %}]::text[]
{%- endmacro %}


{% macro quoted(column) -%}
    "{{ column }}"
{%- endmacro %}


{#- True unless the request type is a public asset: an unknown or missing type is treated as about a person. -#}
{% macro is_person_related(request_type_sql, policy) -%}
    not coalesce({{ request_type_sql }} = any({{ sql_text_array(policy.public_asset_request_types) }}), false)
{%- endmacro %}


{% macro is_sensitive_request_type(request_type_sql, policy) -%}
    coalesce({{ request_type_sql }} = any({{ sql_text_array(policy.sensitive_request_types) }}), false)
{%- endmacro %}


{#- PII4: whether a row of the dataset is kept out of it, a record of a sensitive request type; `alias` qualifies
    the column. -#}
{% macro is_withheld(dataset, policy, alias=none) -%}
    {%- if dataset.grain == 'record' and dataset.request_type_field -%}
        {{ is_sensitive_request_type((alias ~ '.' if alias else '') ~ quoted(dataset.request_type_field), policy) }}
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}


{#- The pattern steps of one scope applied in order; each one a regexp_replace, all case-insensitive. -#}
{% macro apply_pii_patterns(text_sql, policy, scope) -%}
    {%- set ns = namespace(sql=text_sql) -%}
    {%- for step in policy.pii_patterns if step.scope == scope -%}
        {%- set ns.sql = "regexp_replace(" ~ ns.sql ~ ", " ~ sql_literal(step.pattern) ~ ", "
            ~ sql_literal(step.replacement) ~ ", 'gi')" -%}
    {%- endfor -%}
    {{ ns.sql }}
{%- endmacro %}


{#- PII1 and the any-record address steps; values that fail the cheap prefilter skip the patterns. -#}
{% macro redact_pii(text_sql, policy) -%}
    case
        when {{ text_sql }} ~* {{ sql_literal(policy.pii_prefilter) }}
            then {{ apply_pii_patterns(text_sql, policy, 'all') }}
        else {{ text_sql }}
    end
{%- endmacro %}


{#- PII2 in free text: street addresses of person-related records generalized to the block. -#}
{% macro generalize_text_addresses(text_sql, person_related_sql, policy) -%}
    case
        when {{ person_related_sql }} and {{ text_sql }} ~ '[0-9]'
            then {{ apply_pii_patterns(text_sql, policy, 'person') }}
        else {{ text_sql }}
    end
{%- endmacro %}


{#- PII2 for an address field: "1432 Main St" becomes "1400 BLOCK OF MAIN ST" (house numbers 1-99: "0 BLOCK OF"). -#}
{% macro generalize_address(address_sql) -%}
    upper(regexp_replace(regexp_replace({{ address_sql }},
        '^\s*([0-9]{1,3})[0-9]{2}[a-z]?\s+(?!block\M)', '\100 BLOCK OF ', 'i'),
        '^\s*[0-9]{1,2}[a-z]?\s+(?!block\M)', '0 BLOCK OF ', 'i'))
{%- endmacro %}


{#- PII2 for a point: snapped to a grid of 10^-decimals degrees (3 decimals: about 100 m). -#}
{% macro round_location(geometry_sql, policy) -%}
    st_snaptogrid({{ geometry_sql }}, {{ 10.0 ** (-policy.coordinate_decimals) }})
{%- endmacro %}


{% macro round_coordinate(number_sql, policy) -%}
    round(({{ number_sql }})::numeric, {{ policy.coordinate_decimals }})
{%- endmacro %}


{#- True where any of these counts is below the small-cell threshold. -#}
{% macro small_cell(count_columns, policy) -%}
    {%- set conditions = [] -%}
    {%- for column in count_columns -%}
        {%- do conditions.append(quoted(column) ~ ' < ' ~ policy.small_cell_min) -%}
    {%- endfor -%}
    ({{ conditions | join(' or ') }})
{%- endmacro %}


{#- Values replaced in one text: the markers the patterns leave, minus any the original already had. -#}
{% macro marker_count(text_sql) -%}
    (
        (length(coalesce({{ text_sql }}, '')) - length(replace(coalesce({{ text_sql }}, ''), '[redacted-', ''))) / 10
        + (length(coalesce({{ text_sql }}, '')) - length(replace(coalesce({{ text_sql }}, ''), ' BLOCK OF ', ''))) / 10
    )
{%- endmacro %}


{% macro redaction_count(original_sql, published_sql) -%}
    case
        when {{ original_sql }} is distinct from {{ published_sql }}
            then {{ marker_count(published_sql) }} - {{ marker_count(original_sql) }}
        else 0
    end
{%- endmacro %}


{#- The column names of a relation, in order, when the model runs (an empty list while dbt parses). -#}
{% macro relation_columns(relation) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | list) }}
{%- endmacro %}


{#- The published expression of one column of a dataset, by the role datasets.yaml gives the column. -#}
{% macro published_column(column, dataset, free_text, suppressed_by, policy) -%}
    {%- set name = quoted(column) -%}
    {%- set person = 'case when _person_related then ' -%}
    {%- if column in free_text -%}
        {{ return('_published_' ~ (free_text.index(column) + 1) ~ ' as ' ~ name) }}
    {%- elif column in dataset.address_fields -%}
        {{ return(person ~ generalize_address(name) ~ ' else ' ~ name ~ ' end as ' ~ name) }}
    {%- elif column == dataset.geometry_field -%}
        {{ return(person ~ round_location(name, policy) ~ ' else ' ~ name ~ ' end as ' ~ name) }}
    {%- elif column in [dataset.longitude_field, dataset.latitude_field] -%}
        {{ return(person ~ round_coordinate(name, policy) ~ ' else ' ~ name ~ ' end as ' ~ name) }}
    {%- elif column in suppressed_by -%}
        {%- set small = small_cell(suppressed_by[column], policy) -%}
        {{ return('case when ' ~ small ~ ' then null else ' ~ name ~ ' end as ' ~ name) }}
    {%- endif -%}
    {{ return(name) }}
{%- endmacro %}


{#-
    The select of a publish model: `from_sql` is a relation or a CTE name, `columns` its column names, in the
    order to publish them. The dataset's privacy fields come from datasets.yaml through the policy.
-#}
{% macro publish_dataset(dataset_name, from_sql, columns) %}
    {%- set policy = publish_policy() -%}
    {%- if not execute -%}
        select * from {{ from_sql }}
    {%- elif policy is none -%}
        select * from {{ from_sql }} where false
    {%- else -%}
        {%- if dataset_name not in policy.datasets -%}
            {{ exceptions.raise_compiler_error(dataset_name ~ " is not in checks/datasets.yaml (raw.publish_policy)") }}
        {%- endif -%}
        {%- set dataset = policy.datasets[dataset_name] -%}
        {%- set request_type = quoted(dataset.request_type_field) if dataset.request_type_field else none -%}
        {%- set person_related = is_person_related(request_type, policy) if request_type else 'true' -%}
        {%- set free_text = dataset.free_text_fields | select('in', columns) | list -%}
        {#- Each column nulled by a small cell -> the counts that null it (its own, and those it derives from). -#}
        {%- set suppressed_by = {} -%}
        {%- for count in dataset.count_fields if count.name in columns -%}
            {%- for name in [count.name] + count.dependents -%}
                {%- do suppressed_by.setdefault(name, []).append(count.name) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set items = [] -%}
        {%- for column in columns -%}
            {%- do items.append(published_column(column, dataset, free_text, suppressed_by, policy)) -%}
        {%- endfor -%}
        {%- for count in dataset.count_fields if count.name in columns -%}
            {%- set small = small_cell(suppressed_by[count.name], policy) -%}
            {%- do items.append('coalesce(' ~ small ~ ', false) as ' ~ quoted(count.flag)) -%}
        {%- endfor -%}
        {%- set counts = [] -%}
        {%- for field in free_text -%}
            {%- do counts.append(redaction_count(quoted(field), '_published_' ~ loop.index)) -%}
        {%- endfor -%}
        {%- if counts -%}
            {%- do items.append(counts | join(' + ') ~ ' as "RedactionCount"') -%}
        {%- endif %}

with

publishable as (

    select
        *,
        {{ person_related }} as _person_related
    from {{ from_sql }}
    where not {{ is_withheld(dataset, policy) }}

),

redacted as (

    select
        publishable.*
        {%- for field in free_text %},
            redactions._redacted_{{ loop.index }}
        {%- endfor %}
    from publishable
    {%- if free_text %}
        -- Computed in FROM, each value once: in the select list, PostgreSQL would inline this CTE and repeat the
        -- regular expressions at every reference to the text below (a million descriptions: 11 s, not 21).
        cross join lateral unnest(
            {%- for field in free_text %}
                array[{{ redact_pii('publishable.' ~ quoted(field), policy) }}]{{ ',' if not loop.last }}
            {%- endfor %}
        ) as redactions ({% for field in free_text %}_redacted_{{ loop.index }}{{ ', ' if not loop.last }}{% endfor %})
    {%- endif %}

),

generalized as (

    select
        redacted.*
        {%- for field in free_text %},
            generalizations._published_{{ loop.index }}
        {%- endfor %}
    from redacted
    {%- if free_text %}
        cross join lateral unnest(
            {%- for field in free_text %}
                array[{{ generalize_text_addresses('redacted._redacted_' ~ loop.index, 'redacted._person_related',
                                                  policy) }}]{{ ',' if not loop.last }}
            {%- endfor %}
        ) as generalizations ({% for field in free_text %}_published_{{ loop.index }}{{ ', ' if not loop.last }}{% endfor %})
    {%- endif %}

)

select
    {{ items | join(',\n    ') }}
from generalized
    {%- endif -%}
{% endmacro %}
