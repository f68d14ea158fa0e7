{#-
    An incremental publish model rewrites only the rows whose source changed since its last build; its other rows
    went through the privacy policy in force then. When raw.publish_policy holds another policy (a new pattern, a
    newly sensitive request type), the pre-hook empties the model so that every row goes through the new one;
    the post-hook records the policy each model applied, in publish.policy_applied.
-#}

{% macro policy_applied_table(relation) -%}
    {{ relation.schema }}.policy_applied
{%- endmacro %}


{% macro current_policy_digest() -%}
    (select md5(policy::text) from {{ source('civicflow_policy', 'publish_policy') }} order by loaded_at desc limit 1)
{%- endmacro %}


{% macro empty_if_policy_changed(relation) %}

    create table if not exists {{ policy_applied_table(relation) }} (
        relation_name text primary key,
        policy_md5 text not null,
        applied_at timestamptz not null default now()
    );

    do $$
    begin
        if to_regclass('{{ relation.include(database=false) }}') is not null and not exists (
            select 1 from {{ policy_applied_table(relation) }}
            where relation_name = '{{ relation.include(database=false) }}' and policy_md5 = {{ current_policy_digest() }}
        ) then
            truncate {{ relation }};
        end if;
    end
    $$;

{% endmacro %}


{% macro record_policy_applied(relation) %}

    insert into {{ policy_applied_table(relation) }} (relation_name, policy_md5)
    values ('{{ relation.include(database=false) }}', {{ current_policy_digest() }})
    on conflict (relation_name) do update set policy_md5 = excluded.policy_md5, applied_at = now()

{% endmacro %}


{#-
    After a merge, a published row whose fact row is gone, or was rewritten without being merged again (its request
    type became sensitive, PII4), has no fact row with its RequestId and DbtRunId: it is deleted.

    The merge left every publishable fact row with its published row (same RequestId and DbtRunId), so only more
    published rows than publishable fact rows means stale ones: the anti-join (a second on a million rows) runs only
    then.
-#}
{% macro delete_unpublished_rows(relation, facts, dataset_name) %}
    {%- set policy = publish_policy() -%}
    {%- set dataset = policy.datasets[dataset_name] if policy else none %}

    delete from {{ relation }} as published
    where
        (select count(*) from {{ relation }}) <> (
            select count(*)
            from {{ facts }} as facts
            {%- if dataset %}
                where not {{ is_withheld(dataset, policy, 'facts') }}
            {%- endif %}
        )
        and not exists (
            select 1
            from {{ facts }} as facts
            where
                facts."RequestId" = published."RequestId"
                and facts."DbtRunId" = published."DbtRunId"
        )

{% endmacro %}
