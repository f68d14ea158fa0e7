"""When to publish: a sensor that requests a publication run when a dataset's upstream was materialized again and
every blocking check on it passed, and a daily schedule that publishes everything publishable as a fallback (with a
full row comparison). A dataset kept out by a failed check is logged, once per materialization."""

from __future__ import annotations

import json

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)

from civicflow_assets.publish.assets import DATA_JSON, KEY_PREFIX, op_name, publication_key
from civicflow_assets.publish.catalog import Catalog
from civicflow_assets.publish.gate import evaluate_gate

TIMEZONE = "America/New_York"


def _selection(catalog: Catalog) -> AssetSelection:
    return AssetSelection.assets(*[publication_key(n) for n in catalog.datasets], AssetKey([KEY_PREFIX, DATA_JSON]))


def build_publication_sensor(catalog: Catalog, minimum_interval_seconds: int = 60,
                             default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING) -> SensorDefinition:
    @sensor(name="publication_sensor", target=_selection(catalog), minimum_interval_seconds=minimum_interval_seconds,
            default_status=default_status,
            description="Publishes a dataset when its published table was rebuilt and every blocking check passed.")
    def publication_sensor(context: SensorEvaluationContext):
        cursor: dict[str, int] = json.loads(context.cursor or "{}")
        graph = context.repository_def.asset_graph if context.repository_def else None
        ready, held = [], []
        for name, spec in catalog.datasets.items():
            gate = evaluate_gate(context.instance, graph, spec)
            if gate.latest_storage_id is None or gate.latest_storage_id <= cursor.get(name, 0) or gate.waiting:
                continue
            cursor[name] = gate.latest_storage_id
            if gate.publishable:
                ready.append(name)
            else:
                held.append(name)
                context.log.warning(f"{name} is not published: {gate.reason}")
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        if not ready:
            return SkipReason(f"nothing to publish{'; held back: ' + ', '.join(held) if held else ''}")
        return RunRequest(
            run_key="publish:" + ",".join(f"{n}@{cursor[n]}" for n in ready),
            asset_selection=[*(publication_key(n) for n in ready), AssetKey([KEY_PREFIX, DATA_JSON])],
            tags={"civicflow/trigger": "publication_sensor"},
        )

    return publication_sensor


def build_publication_schedule(catalog: Catalog, cron_schedule: str = "15 6 * * *",
                               default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING
                               ) -> ScheduleDefinition:
    @schedule(name="publication_daily", cron_schedule=cron_schedule, execution_timezone=TIMEZONE,
              target=_selection(catalog), default_status=default_status,
              description="Daily fallback: publishes every dataset whose blocking checks pass, comparing every row.")
    def publication_daily(context: ScheduleEvaluationContext):
        graph = context.repository_def.asset_graph if context.repository_def else None
        ready = []
        for name, spec in catalog.datasets.items():
            gate = evaluate_gate(context.instance, graph, spec)
            if gate.publishable:
                ready.append(name)
            else:
                context.log.warning(f"{name} is not published: {gate.reason}")
        if not ready:
            return SkipReason("no dataset passes its blocking checks")
        return RunRequest(
            asset_selection=[*(publication_key(n) for n in ready), AssetKey([KEY_PREFIX, DATA_JSON])],
            run_config={"ops": {op_name(n): {"config": {"full_compare": True}} for n in ready}},
            tags={"civicflow/trigger": "publication_daily"},
        )

    return publication_daily
