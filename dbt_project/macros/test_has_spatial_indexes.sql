{#-
    Generic (model-level) test: every geometry or geography column of the relation has a GiST index whose
    first column it is. Fails with one row per unindexed spatial column.
-#}
{% test has_spatial_indexes(model) %}

    with

    spatial_columns as (

        select
            attribute.attrelid as relation_id,
            attribute.attnum as column_number,
            attribute.attname as column_name
        from pg_catalog.pg_attribute as attribute
        inner join pg_catalog.pg_type as column_type on attribute.atttypid = column_type.oid
        where attribute.attrelid = to_regclass('{{ model }}')
            and attribute.attnum > 0
            and not attribute.attisdropped
            and column_type.typname in ('geometry', 'geography')

    ),

    gist_indexes as (

        select
            pg_index.indrelid as relation_id,
            pg_index.indkey[0] as column_number
        from pg_catalog.pg_index as pg_index
        inner join pg_catalog.pg_class as index_relation on pg_index.indexrelid = index_relation.oid
        inner join pg_catalog.pg_am as access_method on index_relation.relam = access_method.oid
        where access_method.amname = 'gist'

    )

    select spatial_columns.column_name
    from spatial_columns
    left join gist_indexes
        on
            spatial_columns.relation_id = gist_indexes.relation_id
            and spatial_columns.column_number = gist_indexes.column_number
    where gist_indexes.relation_id is null

{% endtest %}
