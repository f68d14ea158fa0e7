# The CivicFlow image: the code location, and the webserver and daemon of docker-compose.yml (docs/deploy.md).
FROM python:3.11-slim-bookworm

# Extra Dagster integrations for a scale-out deployment, pinned with the rest of Dagster, e.g.
# --build-arg DAGSTER_EXTRA_PACKAGES="dagster-k8s==0.29.27" or "dagster-celery==0.29.27" (docs/deploy.md).
ARG DAGSTER_EXTRA_PACKAGES=""

RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/civicflow
COPY pyproject.toml README.md ./
COPY civicflow_assets ./civicflow_assets
COPY dbt_project ./dbt_project
COPY dagster.yaml workspace.yaml ./
# Editable: the package finds dbt_project/ beside it, as in a checkout. dagster-dbt reads the manifest at import.
RUN pip install --no-cache-dir -e . ${DAGSTER_EXTRA_PACKAGES} \
 && dbt parse --project-dir dbt_project --profiles-dir dbt_project

ENV DAGSTER_HOME=/opt/dagster/home
COPY docker/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
# Not root: dbt writes target/ at every run, Dagster its compute logs, CivicFlow its state; nothing else.
RUN useradd --system --uid 10001 --home-dir /opt/civicflow --shell /usr/sbin/nologin civicflow \
 && mkdir -p $DAGSTER_HOME/storage /var/lib/civicflow \
 && cp dagster.yaml $DAGSTER_HOME/ \
 && chown -R civicflow $DAGSTER_HOME /var/lib/civicflow dbt_project
USER civicflow
EXPOSE 3000 4000
