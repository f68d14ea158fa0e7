#!/bin/bash
# Runs once, when the postgis volume is first initialised, after the image's 10_postgis.sh. Creates CivicFlow's
# warehouse (with PostGIS) and Dagster's storage, owned by `civicflow`; CKAN's database and its DataStore,
# owned by `ckan_default` (CKAN writes both), and `datastore_default`, the DataStore's read-only role. CKAN's
# start-up then grants the DataStore permissions (`ckan datastore set-permissions`) as the owner.
# Passwords are psql variables, quoted by psql: nothing in them is interpreted as SQL.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v civicflow_password="$CIVICFLOW_DB_PASSWORD" \
    -v ckan_password="$CKAN_DB_PASSWORD" \
    -v datastore_password="$DATASTORE_READONLY_PASSWORD" <<'SQL'
create role civicflow login password :'civicflow_password';
create database civicflow owner civicflow;
create database dagster owner civicflow;

create role ckan_default login password :'ckan_password';
create role datastore_default login nosuperuser nocreatedb nocreaterole password :'datastore_password';
create database ckan_default owner ckan_default encoding 'UTF8';
create database datastore_default owner ckan_default encoding 'UTF8';

\connect civicflow
create extension if not exists postgis;
SQL
