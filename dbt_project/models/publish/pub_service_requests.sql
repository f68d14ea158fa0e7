-- 311 Service Requests as published (checks/datasets.yaml: service_requests): fct_service_requests without
-- the sensitive request types, descriptions redacted, points of person-related requests rounded (macros/pii.sql).
-- Incremental like the fact: each run redacts only the requests the fact wrote since, those of the dbt invocations
-- (DbtRunId) no published row carries yet: modified requests, a rebuilt range of days. Redacting a million
-- descriptions is most of a build. A changed privacy policy empties it first (macros/policy_applied.sql).
{{
    config(
        materialized='incremental',
        unique_key='"RequestId"',
        incremental_strategy='merge',
        on_schema_change='fail',
        indexes=[{'columns': ['"RequestId"'], 'unique': true}],
        pre_hook="{{ empty_if_policy_changed(this) }}",
        post_hook=[
            "{{ delete_unpublished_rows(this, ref('fct_service_requests'), 'service_requests') }}",
            "{{ record_policy_applied(this) }}",
        ],
    )
}}
{%- set requests = ref('fct_service_requests') %}
{%- set mart_columns = relation_columns(requests) %}
{%- set has_description = 'Description' in mart_columns %}
{%- set columns = mart_columns if has_description else mart_columns + ['Description'] %}

with

requests as (

    select * from {{ requests }}
    {% if is_incremental() %}
        -- A few invocations wrote the whole fact: the set is hashed and read once. (An invocation whose every
        -- request is withheld, PII4, is read again by the next build, and withheld again.)
        where "DbtRunId" not in (select distinct published."DbtRunId" from {{ this }} as published)
    {% endif %}

),

{% if has_description %}

    described as (

        select * from requests

    ),

{% else %}

    -- The mart has no free-text description: it comes from staging, by the source's request key.
    descriptions as (

        select
            source_system,
            service_request_id,
            description
        from {{ ref('stg_city311__service_requests') }}

        union all

        select
            source_system,
            service_request_id,
            description
        from {{ ref('stg_open311__service_requests') }}

    ),

    described as (

        select
            requests.*,
            descriptions.description as "Description"
        from requests
        left join descriptions
            on
                requests."SourceSystem" = descriptions.source_system
                and requests."ServiceRequestId" = descriptions.service_request_id

    ),

{% endif %}

published as (

    {{ publish_dataset('service_requests', 'described', columns) }}

)

select * from published  -- noqa: AM04
