{#-
    Monthly range partitions for a large table model, which dbt-postgres cannot declare: set
    `partition_by_month='"CreatedMonth"'` (a date column holding the first of a month) in its config. The
    post-hook does nothing on a table built without partitions.

    The first build and every --full-refresh create the table partitioned by that column: one partition per
    month in the data, and a default one for nulls and for months that arrive later, which the post-hook
    `split_new_months(this)` moves into partitions of their own after each incremental run. Queries that filter
    on the month read only its partitions; analysts see the one table, since the partitions live in
    <schema>_partitions. Partition names carry the dbt invocation that made them, so a full refresh (which
    builds beside the old table, then swaps) never collides with the partitions it replaces.
-#}
{% macro postgres__create_table_as(temporary, relation, sql) -%}
    {%- set month_column = config.get('partition_by_month') -%}
    {%- if month_column and not temporary -%}
        {{ create_month_partitioned_table(relation, sql, month_column) }}
    {%- else -%}
        {{ dbt.postgres__create_table_as(temporary, relation, sql) }}
    {%- endif -%}
{%- endmacro %}


{% macro create_month_partitioned_table(relation, sql, month_column) %}
    {%- set partitions = relation.schema ~ '_partitions' -%}
    create schema if not exists {{ partitions }};

    create temporary table monthly_rows as (
        {{ sql }}
    );

    create table {{ relation }} (like monthly_rows) partition by range ({{ month_column }});

    create table {{ partitions }}."{{ relation.identifier }}_default_{{ invocation_id[:8] }}"
    partition of {{ relation }} default;

    do $$
    declare
        month date;
    begin
        for month in select distinct {{ month_column }} from monthly_rows where {{ month_column }} is not null loop
            execute format(
                'create table %I.%I partition of %s for values from (%L) to (%L)',
                '{{ partitions }}', '{{ relation.identifier }}_' || to_char(month, 'YYYYMM') || '_{{ invocation_id[:8] }}',
                '{{ relation }}', month, (month + interval '1 month')::date
            );
        end loop;
    end $$;

    insert into {{ relation }} select * from monthly_rows;

    drop table monthly_rows;
{% endmacro %}


{% macro split_new_months(relation, month_column) %}
    do $$
    declare
        default_partition regclass;
        month date;
        name text;
    begin
        select inherits.inhrelid::regclass into default_partition
        from pg_inherits as inherits
        inner join pg_class as partition on inherits.inhrelid = partition.oid
        where
            inherits.inhparent = '{{ relation }}'::regclass
            and pg_get_expr(partition.relpartbound, partition.oid) = 'DEFAULT';
        if default_partition is null then
            return;  -- built without partitions
        end if;
        for month in execute format(
            'select distinct %s from %s where %s is not null', '{{ month_column }}', default_partition, '{{ month_column }}'
        ) loop
            name := '{{ relation.identifier }}_' || to_char(month, 'YYYYMM') || '_{{ invocation_id[:8] }}';
            execute format('create table %I.%I (like %s)', '{{ relation.schema }}_partitions', name, '{{ relation }}');
            execute format(
                'with moved as (delete from %s where %s = %L returning *) insert into %I.%I select * from moved',
                default_partition, '{{ month_column }}', month, '{{ relation.schema }}_partitions', name
            );
            execute format(
                'alter table %s attach partition %I.%I for values from (%L) to (%L)',
                '{{ relation }}', '{{ relation.schema }}_partitions', name, month, (month + interval '1 month')::date
            );
        end loop;
    end $$
{% endmacro %}
