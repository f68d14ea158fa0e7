"""Whether a dataset may be published now: its upstream assets' latest materializations, and the latest result of
every check on them. A blocking check that failed, errored, or has not yet run on the latest materialization
keeps the dataset out; non-blocking ones only go into the published check summary.

Used in three places with the same answer: the sensor (request a run), the schedule (pick the datasets), and the
publication asset itself (refuse, whoever started the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster_shared.check import CheckError

from civicflow_assets.publish.catalog import DatasetSpec
from civicflow_assets.publish.metadata import CheckResult, CheckSummary


@dataclass(frozen=True)
class Gate:
    dataset: str
    publishable: bool
    waiting: bool  # no verdict yet (a blocking check has not run on the latest data): ask again later
    reasons: tuple[str, ...]
    latest_storage_id: int | None  # the newest materialization of any upstream asset
    checks: CheckSummary = field(default_factory=CheckSummary)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or "every blocking check passed"


def _metadata_text(evaluation, key: str) -> str:
    value = (evaluation.metadata or {}).get(key)
    return str(getattr(value, "value", value) or "") if value is not None else ""


def _declared_blocking(asset_graph, check_key: AssetCheckKey) -> bool:
    try:
        return bool(asset_graph.get_check_spec(check_key).blocking)
    except (AttributeError, KeyError, CheckError):
        return False  # known only from its evaluation, which says whether it blocks


def evaluate_gate(instance: DagsterInstance, asset_graph, spec: DatasetSpec) -> Gate:
    """`asset_graph`: the repository's (context.repository_def.asset_graph), which knows each check's spec."""
    keys = [AssetKey(list(k)) for k in spec.upstream_keys]
    latest: dict[AssetKey, int] = {}
    check_keys: set[AssetCheckKey] = set()
    for key in keys:
        records = instance.fetch_materializations(key, limit=1).records
        if records:
            latest[key] = records[0].storage_id
            # Also the checks that ran with it: a graph without them (a job run in process) must not hide one.
            for entry in instance.all_logs(records[0].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = entry.dagster_event.event_specific_data
                if evaluation.asset_key == key:
                    check_keys.add(AssetCheckKey(key, evaluation.check_name))
        if asset_graph is not None and asset_graph.has(key):
            check_keys.update(asset_graph.get(key).check_keys)
    executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
    failures: list[str] = []
    pending: list[str] = []  # not a verdict yet: wait, and ask again on the next tick
    results: list[CheckResult] = []
    for check_key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        blocking = _declared_blocking(asset_graph, check_key)
        label = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        record = executions.get(check_key)
        if record is None:
            if blocking:
                pending.append(f"blocking check {label} has not run yet")
            continue
        if record.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                if blocking:
                    pending.append(f"blocking check {label} is still running")
            elif blocking:
                failures.append(f"blocking check {label} did not complete (its run failed)")
            continue
        evaluation = record.evaluation
        target = evaluation.target_materialization_data if evaluation else None
        passed = record.status == AssetCheckExecutionRecordStatus.SUCCEEDED
        blocking = bool(evaluation.blocking) if evaluation and evaluation.blocking is not None else blocking
        results.append(CheckResult(label, passed, blocking, (evaluation.description or "") if evaluation else "",
                                   _metadata_text(evaluation, "waived") if evaluation else ""))
        if not blocking:
            continue
        if target is not None and latest.get(check_key.asset_key, 0) > target.storage_id:
            pending.append(f"blocking check {label} has not run on the latest materialization yet")
        elif not passed:
            summary = f" ({evaluation.description})" if evaluation and evaluation.description else ""
            failures.append(f"blocking check {label} failed{summary}")
    return Gate(spec.name, not (failures or pending), bool(pending) and not failures, (*failures, *pending),
                max(latest.values()) if latest else None, CheckSummary(tuple(results)))
