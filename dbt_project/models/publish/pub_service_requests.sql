-- 311 Service Requests as published (checks/datasets.yaml: service_requests): fct_service_requests without
-- the sensitive request types, descriptions redacted, points of person-related requests rounded (macros/pii.sql).
-- Incremental like the fact: each run redacts only the requests the fact wrote since (another DbtRunId: modified
-- requests, a rebuilt range of days), as redacting a million descriptions is most of a build; a changed privacy
-- policy empties it first (macros/policy_applied.sql).
{{
    config(
        materialized='incremental',
        unique_key='"RequestId"',
        incremental_strategy='merge',
        on_schema_change='fail',
        indexes=[{'columns': ['"RequestId"'], 'unique': true}],
        pre_hook="{{ empty_if_policy_changed(this) }}",
        post_hook=[
            "{{ delete_unpublished_rows(this, ref('fct_service_requests')) }}",
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
        where not exists (
                select 1
                from {{ this }} as published
                where
                    published."RequestId" = {{ requests }}."RequestId"
                    and published."DbtRunId" = {{ requests }}."DbtRunId"
            )
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
