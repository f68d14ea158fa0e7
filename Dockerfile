# The CivicFlow code location (also used by the webserver and daemon services of docker-compose.yml).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/civicflow
COPY pyproject.toml README.md ./
COPY civicflow_assets ./civicflow_assets
COPY dbt_project ./dbt_project
COPY dagster.yaml workspace.yaml ./
# Editable: the package finds dbt_project/ beside it, as in a checkout.
RUN pip install --no-cache-dir -e . \
 && dbt parse --project-dir dbt_project --profiles-dir dbt_project
ENV DAGSTER_HOME=/opt/dagster/home
RUN mkdir -p $DAGSTER_HOME && cp dagster.yaml $DAGSTER_HOME/
COPY docker/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
