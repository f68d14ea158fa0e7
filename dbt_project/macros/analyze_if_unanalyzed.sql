{#-
    Post-hook: ANALYZE a relation that has no statistics yet, i.e. right after a full build created it, so that
    analysts' first queries are planned on real figures. An incremental merge leaves the statistics to
    autovacuum, which refreshes them once a tenth of the rows changed: a second or two saved per run.
-#}
{% macro analyze_if_unanalyzed(relation) %}

    do $analyze_if_unanalyzed$
    begin
        if not exists (
            select 1 from pg_catalog.pg_statistic where starelid = '{{ relation }}'::regclass
        ) then
            analyze {{ relation }};
        end if;
    end
    $analyze_if_unanalyzed$

{% endmacro %}
