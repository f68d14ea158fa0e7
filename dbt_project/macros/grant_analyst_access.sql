{#-
    Post-hook of every mart: the read-only analyst role, idempotently.

    Creates the NOLOGIN role `civicflow_analyst` if it is missing (analysts' login roles are granted it), grants it
    USAGE on the mart's schema and SELECT on the mart (and on tables dbt creates there later), and revokes whatever
    it was given on `raw`, touching only objects whose ACL names it (a blanket REVOKE would rewrite every raw
    table's catalog row while loads may be changing them). An advisory transaction lock serialises concurrent dbt
    threads: CREATE ROLE or GRANT on one schema from two transactions at once fail ("tuple concurrently updated").
    Advisory locks are per database and roles are not: a role created meanwhile from another database is fine.
-#}
{% macro grant_analyst_access(relation, role='civicflow_analyst') %}

    select pg_advisory_xact_lock(hashtext('civicflow.grant_analyst_access'));

    do $grant_analyst_access$
    declare
        granted regclass;
    begin
        if not exists (select 1 from pg_catalog.pg_roles where rolname = '{{ role }}') then
            begin
                create role {{ role }} nologin;
            exception when duplicate_object or unique_violation then
                null;  -- created meanwhile by a dbt run in another database (roles are cluster-wide)
            end;
        end if;
        for granted in
            select class.oid::regclass
            from pg_catalog.pg_class as class
            inner join pg_catalog.pg_namespace as namespace on class.relnamespace = namespace.oid
            cross join lateral aclexplode(class.relacl) as acl
            where namespace.nspname = 'raw' and acl.grantee = '{{ role }}'::regrole
        loop
            execute format('revoke all on %s from {{ role }}', granted);
        end loop;
        if exists (
            select 1
            from pg_catalog.pg_namespace as namespace
            cross join lateral aclexplode(namespace.nspacl) as acl
            where namespace.nspname = 'raw' and acl.grantee = '{{ role }}'::regrole
        ) then
            revoke all on schema raw from {{ role }};
        end if;
    end
    $grant_analyst_access$;

    grant usage on schema {{ relation.schema }} to {{ role }};
    grant select on {{ relation }} to {{ role }};
    alter default privileges in schema {{ relation.schema }} grant select on tables to {{ role }};

{% endmacro %}
