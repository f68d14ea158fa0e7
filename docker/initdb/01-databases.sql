-- The warehouse gets PostGIS; Dagster's runs and events live in their own database.
create extension if not exists postgis;
create database dagster;
