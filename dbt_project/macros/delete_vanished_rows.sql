{#-
    Post-hook of the incremental models: a merge only inserts and updates, so rows whose source row is gone
    (a snapshot extract no longer lists the request) are deleted here.

    After the merge every upstream key is in the relation, so equal row counts mean nothing vanished: the
    anti-join (seconds on a million rows) runs only when the counts differ.
-#}
{% macro delete_vanished_rows(relation, key, upstream, upstream_key) %}

    delete from {{ relation }} as target
    where
        (select count(*) from {{ relation }}) <> (select count(*) from {{ upstream }})
        and not exists (
            select 1
            from {{ upstream }} as upstream
            where upstream.{{ upstream_key }} = target.{{ key }}
        )

{% endmacro %}
